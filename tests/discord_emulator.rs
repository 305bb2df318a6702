//! The Discord adapter against the local Discord emulator (REST + gateway on 127.0.0.1):
//! what the team sees in the channel, what a click or a slash command turns into, and that
//! the outbox survives 5xx, 429 and a restart of the bot. The supervisor's part (storing
//! the outbox entry, answering `Inbound`) is played by the test.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use discord_emulator::{
    CommandOpt, EmuUser, Emulator, EmulatorConfig, Fault, RecordedRequest, Refusal, MAX_ALLOWED_MENTIONS,
};
use serde_json::Value;
use tokio::sync::mpsc;

use trainwatch::chat::discord::{
    connect, DiscordChat, DiscordPrincipal, DiscordRunning, DiscordSetup, RetryPolicy,
};
use trainwatch::chat::{ChatSink, Inbound, Outgoing};
use trainwatch::config::StatusMode;
use trainwatch::engine::{
    Body, Button, Command, Decision, DecisionPoint, Message, MessageKey, Progress, Reply,
};
use trainwatch::model::{Category, Incident, JobName, Persona, ProcessId, RunId, Severity};
use trainwatch::store::Store;

const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAx.emulated.token-for-tests";
const WAIT: Duration = Duration::from_secs(20);
const CH: u64 = 300_000_000_000_000_001;
const CH2: u64 = 300_000_000_000_000_002;
const DIRECTOR_ROLE: u64 = 400_000_000_000_000_001;
const TRANSLATOR: u64 = 500_000_000_000_000_007;

fn job(s: &str) -> JobName {
    JobName::new(s).unwrap()
}

fn director() -> EmuUser {
    EmuUser::new(600_000_000_000_000_001, "ann").with_roles([DIRECTOR_ROLE])
}

fn outsider() -> EmuUser {
    EmuUser::new(600_000_000_000_000_002, "eve")
}

struct Bot {
    emu: Emulator,
    chat: Arc<DiscordChat>,
    running: Option<DiscordRunning>,
    inbound: mpsc::Receiver<Inbound>,
    store: Arc<Mutex<Store>>,
    dir: tempfile::TempDir,
}

fn setup(emu: &Emulator, dir: &std::path::Path) -> DiscordSetup {
    DiscordSetup {
        token: TOKEN.into(),
        guild_id: Some(emu.config().guild_id),
        default_channel: CH,
        job_channels: [(job("other_job"), CH2)].into_iter().collect(),
        jobs: vec![job("model_3"), job("other_job")],
        job_logs: [(job("model_3"), dir.join("model_3.log"))].into_iter().collect(),
        personas: vec![
            (Persona::Director, vec![DiscordPrincipal::Role(DIRECTOR_ROLE)]),
            (Persona::CodeTranslator, vec![DiscordPrincipal::User(TRANSLATOR)]),
        ],
        status_mode: StatusMode::Edit,
        proxy_url: Some(emu.proxy_url()),
        https_proxy: None,
        ca_cert_pem: None,
        retry: RetryPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            poll: Duration::from_secs(1),
        },
    }
}

impl Bot {
    async fn start() -> Bot {
        Bot::start_with(false).await
    }

    /// `https`: through the emulator's CONNECT proxy with its test CA (serenity's rate
    /// limiter on), else with the emulator as `proxy_url` (rate limiter off).
    async fn start_with(https: bool) -> Bot {
        Bot::start_adjusted(https, |_| {}).await
    }

    /// As `start_with`, with the setup changed by `adjust` first.
    async fn start_adjusted(https: bool, adjust: impl FnOnce(&mut DiscordSetup)) -> Bot {
        let emu = Emulator::start(EmulatorConfig {
            channels: vec![(CH, "training".into()), (CH2, "other".into())],
            token: Some(TOKEN.into()),
            https_proxy: https,
            ..Default::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(Store::open(&dir.path().join("state.db")).unwrap()));
        let (tx, inbound) = mpsc::channel(16);
        let mut s = setup(&emu, dir.path());
        if https {
            s.proxy_url = None;
            s.https_proxy = Some(emu.https_proxy_url());
            s.ca_cert_pem = Some(emu.ca_cert_pem().unwrap().as_bytes().to_vec());
        }
        adjust(&mut s);
        let (chat, running) = connect(s, store.clone(), tx).await.unwrap();
        emu.wait_ready(WAIT).await.unwrap();
        let guild = emu.config().guild_id;
        emu.wait_for(
            |r| {
                r.iter()
                    .any(|q| q.method == "PUT" && q.path.contains(&format!("/guilds/{guild}/commands")))
            },
            WAIT,
        )
        .await
        .unwrap();
        Bot {
            emu,
            chat,
            running: Some(running),
            inbound,
            store,
            dir,
        }
    }

    /// What the supervisor does with an engine step's output: store, then wake.
    fn send(&self, out: Outgoing) {
        let item = self.chat.to_outbox(&out).unwrap();
        self.store
            .lock()
            .unwrap()
            .enqueue(Utc::now(), out.job(), &item)
            .unwrap();
        self.chat.wake();
    }

    /// A message the bot posted (not an interaction answer), matching `pred`.
    async fn report(&self, channel: u64, pred: impl Fn(&Value) -> bool) -> Value {
        self.emu
            .wait_message(
                channel,
                |m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()) && pred(m),
                WAIT,
            )
            .await
            .unwrap()
    }

    fn reports(&self, channel: u64) -> Vec<Value> {
        self.emu
            .messages(channel)
            .into_iter()
            .filter(|m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()))
            .collect()
    }

    /// Play the supervisor for one inbound command: check it, answer with `replies`.
    async fn answer(
        &mut self,
        replies: impl FnOnce(&Inbound) -> Vec<Reply>,
    ) -> (JobName, Command, trainwatch::model::Actor) {
        let inbound = tokio::time::timeout(WAIT, self.inbound.recv())
            .await
            .unwrap()
            .unwrap();
        let r = replies(&inbound);
        let seen = (inbound.job.clone(), inbound.command.clone(), inbound.by.clone());
        inbound.reply.send(r).unwrap();
        seen
    }

    async fn followup(&self, token: &str) -> RecordedRequest {
        let token = token.to_string();
        let reqs = self
            .emu
            .wait_for(
                |r| {
                    r.iter().any(|q| {
                        q.method == "POST" && q.path.starts_with("/webhooks/") && q.path.ends_with(&token)
                    })
                },
                WAIT,
            )
            .await
            .unwrap();
        reqs.into_iter()
            .find(|q| q.method == "POST" && q.path.starts_with("/webhooks/") && q.path.ends_with(&token))
            .unwrap()
    }

    async fn drained(&self) {
        drained(&self.store).await;
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.emu.shutdown().await.unwrap();
    }
}

/// A whole test gets this long: a hang becomes a failure that names the test.
async fn bounded(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("the test did not finish in time");
}

/// Wait (bounded) until every outbox entry is marked sent.
async fn drained(store: &Mutex<Store>) {
    for _ in 0..400 {
        if store.lock().unwrap().pending(10).unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox was not drained");
}

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 14, 2, 0).unwrap()
}

fn error_report(job_name: &str, run: u32, seq: u32) -> Outgoing {
    Outgoing::Post(Message {
        job: job(job_name),
        run: RunId(run),
        key: MessageKey::Incident(seq),
        at: at(),
        to: vec![Persona::Director, Persona::CodeTranslator],
        body: Body::ErrorDetected {
            seq,
            pid: Some(ProcessId::Local(4242)),
            log_file: PathBuf::from("logs/model_3.log"),
            incident: Incident {
                category: Category::Implementation,
                severity: Severity::Fatal,
                line: 87,
                text: "RuntimeError: shape mismatch @everyone".into(),
                excerpt: vec![
                    "Traceback (most recent call last):".into(),
                    "  File \"train.py\", line 87".into(),
                ],
                count: 1,
                reason: String::new(),
            },
            exit: None,
            elapsed: Duration::from_secs(3600),
        },
        buttons: [
            Decision::Restart,
            Decision::Kill,
            Decision::Continue,
            Decision::Investigate,
        ]
        .iter()
        .map(|d| Button {
            decision: *d,
            point: DecisionPoint::Incident(seq),
            label: d.as_str().into(),
        })
        .collect(),
        attachments: Vec::new(),
    })
}

fn notice(job_name: &str, n: u32, text: &str) -> Outgoing {
    Outgoing::Post(Message {
        job: job(job_name),
        run: RunId(1),
        key: MessageKey::Notice(n),
        at: at(),
        to: vec![],
        body: Body::DecisionTaken {
            decision: Decision::Continue,
            by: "@ann".into(),
            detail: text.into(),
        },
        buttons: vec![],
        attachments: Vec::new(),
    })
}

fn status(n: u32, elapsed_min: u64) -> Outgoing {
    Outgoing::Post(Message {
        job: job("model_3"),
        run: RunId(1),
        key: MessageKey::Status(n),
        at: at(),
        to: vec![],
        body: Body::StatusUpdate {
            pid: ProcessId::Local(4242),
            log_file: "logs/model_3.log".into(),
            elapsed: Duration::from_secs(elapsed_min * 60),
            attempt: None,
            expected: None,
            progress: Progress::default(),
            last_line: Some(format!("epoch {n}")),
            open: vec![],
        },
        buttons: vec![],
        attachments: Vec::new(),
    })
}

fn buttons(m: &Value) -> Vec<Value> {
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// How many times the bot edited message `message` in `channel`.
fn edits_of(emu: &Emulator, channel: u64, message: u64) -> usize {
    let path = format!("/channels/{channel}/messages/{message}");
    emu.requests()
        .iter()
        .filter(|q| q.method == "PATCH" && q.path == path)
        .count()
}

fn id(m: &Value) -> u64 {
    m["id"].as_str().unwrap().parse().unwrap()
}

fn title(m: &Value) -> String {
    m["embeds"][0]["title"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_report_is_posted_with_mentions_allowed_mentions_and_buttons() {
    bounded(async move {
        let bot = Bot::start().await;
        let commands = bot.emu.guild_commands(bot.emu.config().guild_id);
        let names: Vec<&str> = commands.iter().filter_map(|c| c["name"].as_str()).collect();
        assert!(names.contains(&"train") && names.contains(&"decide"), "{names:?}");

        bot.send(error_report("model_3", 4, 2));
        let m = bot.report(CH, |m| title(m).contains("ERROR DETECTED")).await;
        assert_eq!(m["content"], format!("<@&{DIRECTOR_ROLE}> <@{TRANSLATOR}>"));
        let ids: Vec<String> = buttons(&m)
            .iter()
            .map(|b| b["custom_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ids,
            ["restart", "kill", "continue", "investigate"].map(|d| format!("tw1:{d}:model_3:4:i2"))
        );
        let embed = &m["embeds"][0];
        assert!(embed["description"]
            .as_str()
            .unwrap()
            .contains("RuntimeError: shape mismatch"));
        assert!(
            !m.to_string().contains("@everyone"),
            "log text must not ping everyone"
        );
        // What was sent: only the addressed role and user may be pinged.
        let is_post =
            |q: &RecordedRequest| q.method == "POST" && q.path == format!("/channels/{CH}/messages");
        let reqs = bot.emu.wait_for(|r| r.iter().any(is_post), WAIT).await.unwrap();
        let sent = reqs.into_iter().find(is_post).unwrap();
        let body = sent.body.json().unwrap();
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
        assert_eq!(
            body["allowed_mentions"]["roles"],
            serde_json::json!([DIRECTOR_ROLE])
        );
        assert_eq!(body["allowed_mentions"]["users"], serde_json::json!([TRANSLATOR]));
        // Marked sent, with the message id remembered for later edits.
        bot.drained().await;
        let posted = bot
            .store
            .lock()
            .unwrap()
            .posted("model_3", 4, "incident-2")
            .unwrap();
        assert_eq!(posted, Some((CH.to_string(), id(&m).to_string())));
        assert!(bot.store.lock().unwrap().pending(10).unwrap().is_empty());
        bot.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directors_click_is_a_targeted_decision_and_the_report_is_closed_in_place() {
    bounded(async move {
        let mut bot = Bot::start().await;
        bot.send(error_report("model_3", 4, 2));
        let m = bot.report(CH, |m| title(m).contains("ERROR DETECTED")).await;
        let click = bot
            .emu
            .click_button(CH, id(&m), "tw1:restart:model_3:4:i2", &director())
            .unwrap();
        let (j, command, by) = bot
            .answer(|i| {
                vec![Reply {
                    to: i.by.clone(),
                    accepted: true,
                    text: "restarting model_3".into(),
                }]
            })
            .await;
        assert_eq!(j, job("model_3"));
        assert_eq!(
            command,
            Command::Decide {
                decision: Decision::Restart,
                target: Some((RunId(4), DecisionPoint::Incident(2))),
                extend: None
            }
        );
        assert_eq!(by.id, director().id.to_string());
        assert_eq!(by.display, "@ann");
        assert_eq!(by.personas, vec![Persona::Director]);
        // The answer is for the clicker only.
        let f = bot.followup(&click.token).await;
        let body = f.body.json().unwrap();
        assert_eq!(body["flags"], 64);
        assert!(body["content"].as_str().unwrap().contains("restarting model_3"));
        // The click itself changes nothing in the channel: the answer came after the engine's
        // reply, and the report is still as posted.
        assert_eq!(
            edits_of(&bot.emu, CH, id(&m)),
            0,
            "a click does not edit the report"
        );
        assert!(buttons(&bot.reports(CH)[0])
            .iter()
            .all(|b| b["disabled"] == false));

        // The engine's Resolve arrives through the outbox and closes the report in place:
        // buttons disabled, who decided in the footer.
        bot.send(Outgoing::Resolve {
            job: job("model_3"),
            run: RunId(4),
            key: MessageKey::Incident(2),
            note: "Restarted by @ann at 14:02 UTC".into(),
        });
        let closed = bot
            .report(CH, |x| {
                id(x) == id(&m) && buttons(x).iter().all(|b| b["disabled"] == true)
            })
            .await;
        let footer = closed["embeds"][0]["footer"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(footer.starts_with("Restarted by @ann at "), "{footer}");
        assert_eq!(footer, "Restarted by @ann at 14:02 UTC");
        assert_eq!(bot.reports(CH).len(), 1, "edited, not reposted");
        assert_eq!(title(&closed), title(&m));
        bot.drained().await;
        assert_eq!(edits_of(&bot.emu, CH, id(&m)), 1, "one decision, one edit");
        // Nobody can click it again.
        assert!(bot
            .emu
            .click_button(CH, id(&m), "tw1:kill:model_3:4:i2", &director())
            .is_err());
        bot.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_without_the_role_is_refused_ephemerally() {
    bounded(async move {
        let mut bot = Bot::start().await;
        bot.send(error_report("model_3", 1, 1));
        let m = bot.report(CH, |m| title(m).contains("ERROR DETECTED")).await;
        let click = bot
            .emu
            .click_button(CH, id(&m), "tw1:kill:model_3:1:i1", &outsider())
            .unwrap();
        let (_, _, by) = bot
            .answer(|i| {
                // What the engine answers a user without the director persona.
                assert!(i.by.personas.is_empty());
                vec![Reply {
                    to: i.by.clone(),
                    accepted: false,
                    text: format!(
                        "{} may not kill model_3: decisions need the director role",
                        i.by.display
                    ),
                }]
            })
            .await;
        assert_eq!(by.display, "@eve");
        let f = bot.followup(&click.token).await;
        let body = f.body.json().unwrap();
        assert_eq!(body["flags"], 64);
        assert!(body["content"]
            .as_str()
            .unwrap()
            .contains("@eve may not kill model_3"));
        // The report still awaits a decision.
        let now = bot.report(CH, |x| id(x) == id(&m)).await;
        assert!(buttons(&now).iter().all(|b| b["disabled"] == false));
        bot.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_delivers_in_order_after_discord_answered_503_for_a_while() {
    bounded(async move {
        let bot = Bot::start().await;
        bot.emu.inject_fault(
            Fault::status(503)
                .times(4)
                .on_method("POST")
                .on_path(format!("/channels/{CH}/messages")),
        );
        for n in 1..=3 {
            bot.send(notice("model_3", n, &format!("note number {n}")));
        }
        bot.report(CH, |m| {
            m["embeds"][0]["description"]
                .as_str()
                .unwrap_or("")
                .contains("note number 3")
        })
        .await;
        let order: Vec<String> = bot
            .reports(CH)
            .iter()
            .map(|m| m["embeds"][0]["description"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(order.len(), 3, "each message exactly once: {order:?}");
        for (i, d) in order.iter().enumerate() {
            assert!(
                d.contains(&format!("note number {}", i + 1)),
                "out of order: {order:?}"
            );
        }
        bot.drained().await;
        let failed = bot.emu.requests().iter().filter(|q| q.status == 503).count();
        assert_eq!(failed, 4);
        bot.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_per_channel_and_a_restart_loses_nothing() {
    bounded(async move {
        let bot = Bot::start().await;
        // Discord asks this channel to wait an hour.
        bot.emu.inject_fault(
            Fault::rate_limited(Duration::from_secs(3600))
                .times(1)
                .on_path(format!("/channels/{CH}/messages")),
        );
        bot.send(notice("model_3", 1, "waits for the rate limit"));
        bot.emu
            .wait_for(|r| r.iter().any(|q| q.status == 429), WAIT)
            .await
            .unwrap();
        // Another channel is not held up.
        bot.send(notice("other_job", 1, "other channel"));
        bot.report(CH2, |_| true).await;
        // Far more than the test's 20 ms backoff: a client ignoring retry-after would have retried.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let tries = bot
            .emu
            .requests()
            .iter()
            .filter(|q| q.method == "POST" && q.path == format!("/channels/{CH}/messages"))
            .count();
        assert_eq!(tries, 1, "retried before retry-after");
        assert!(bot.reports(CH).is_empty());

        // The bot restarts: the entry is still in the outbox and goes out.
        let Bot {
            emu,
            chat: _,
            mut running,
            inbound: _,
            store,
            dir,
        } = bot;
        running.take().unwrap().shutdown().await;
        let (tx, _inbound) = mpsc::channel(16);
        let (_chat, running) = connect(setup(&emu, dir.path()), store.clone(), tx).await.unwrap();
        let m = emu
            .wait_message(CH, |m| m.to_string().contains("waits for the rate limit"), WAIT)
            .await
            .unwrap();
        assert!(m["embeds"][0]["title"].as_str().unwrap().contains("Decision"));
        drained(&store).await;
        running.shutdown().await;
        emu.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_updates_edit_one_message_per_run() {
    bounded(async move {
        let bot = Bot::start().await;
        bot.send(status(1, 30));
        let first = bot.report(CH, |m| title(m).contains("Status")).await;
        bot.send(status(2, 60));
        let second = bot
            .report(CH, |m| {
                m["embeds"][0]["description"]
                    .as_str()
                    .unwrap_or("")
                    .contains("epoch 2")
            })
            .await;
        assert_eq!(id(&first), id(&second), "the same message, edited");
        assert_eq!(bot.reports(CH).len(), 1);
        assert!(second["embeds"][0]["footer"]["text"]
            .as_str()
            .unwrap()
            .contains("updated 14:02 UTC"));
        bot.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigation_request_goes_to_a_thread_on_the_report() {
    bounded(async move {
        let bot = Bot::start().await;
        bot.send(error_report("model_3", 1, 1));
        let report = bot.report(CH, |m| title(m).contains("ERROR DETECTED")).await;
        bot.send(Outgoing::Post(Message {
            job: job("model_3"),
            run: RunId(1),
            key: MessageKey::Investigate(1),
            at: at(),
            to: vec![Persona::CodeTranslator],
            body: Body::Investigate {
                owner: Persona::CodeTranslator,
                requested_by: "@ann".into(),
                incident: None,
                log_file: "logs/model_3.log".into(),
                last_line: None,
            },
            buttons: vec![],
            attachments: Vec::new(),
        }));
        // Discord gives a thread started on a message that message's id.
        let thread = id(&report);
        let asked = bot
            .report(thread, |m| m.to_string().contains("please investigate"))
            .await;
        assert_eq!(asked["content"], format!("<@{TRANSLATOR}>"));
        assert!(bot
            .emu
            .requests()
            .iter()
            .any(|q| q.method == "POST" && q.path == format!("/channels/{CH}/messages/{thread}/threads")));
        assert_eq!(bot.reports(CH).len(), 1, "not in the channel itself");
        bot.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands_answer_ephemerally_and_autocomplete_job_names() {
    bounded(async move {
        let mut bot = Bot::start().await;
        // /train status model_3 → the engine's Status command, answered to the sender only.
        let cmd = bot
            .emu
            .slash_command(
                CH,
                &director(),
                "train",
                vec![CommandOpt::subcommand(
                    "status",
                    vec![CommandOpt::string("job", "model_3")],
                )],
            )
            .unwrap();
        let (j, command, _) = bot
            .answer(|i| {
                vec![Reply {
                    to: i.by.clone(),
                    accepted: true,
                    text: "model_3 is running (run 1, PID 4242)".into(),
                }]
            })
            .await;
        assert_eq!((j, command), (job("model_3"), Command::Status));
        let cb = bot.emu.wait_callback(&cmd, WAIT).await.unwrap();
        assert_eq!(cb["type"], 5);
        assert_eq!(cb["data"]["flags"], 64);
        let answer = bot
            .emu
            .wait_message(
                CH,
                |m| m["content"].as_str().unwrap_or("").contains("model_3 is running"),
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(answer["flags"].as_u64().unwrap() & 64, 64);

        // An unknown job is answered with the reason, without bothering the engine.
        let bad = bot
            .emu
            .slash_command(
                CH,
                &director(),
                "decide",
                vec![
                    CommandOpt::string("job", "nope"),
                    CommandOpt::string("decision", "kill"),
                ],
            )
            .unwrap();
        bot.emu.wait_callback(&bad, WAIT).await.unwrap();
        let why = bot
            .emu
            .wait_message(
                CH,
                |m| m["content"].as_str().unwrap_or("").contains("unknown job"),
                WAIT,
            )
            .await
            .unwrap();
        assert!(why["content"].as_str().unwrap().contains("model_3, other_job"));
        assert!(bot.inbound.try_recv().is_err());

        // /train logs: the log's last lines, sanitized.
        std::fs::write(
            bot.dir.path().join("model_3.log"),
            "epoch 1\nepoch 2 loss=0.5\nping @everyone\n",
        )
        .unwrap();
        bot.emu
            .slash_command(
                CH,
                &director(),
                "train",
                vec![CommandOpt::subcommand(
                    "logs",
                    vec![
                        CommandOpt::string("job", "model_3"),
                        CommandOpt::integer("lines", 2),
                    ],
                )],
            )
            .unwrap();
        let logs = bot
            .emu
            .wait_message(
                CH,
                |m| m["content"].as_str().unwrap_or("").contains("epoch 2 loss=0.5"),
                WAIT,
            )
            .await
            .unwrap();
        let text = logs["content"].as_str().unwrap();
        assert!(!text.contains("epoch 1") && !text.contains("@everyone"), "{text}");

        // Autocomplete offers matching job names.
        let ac = bot
            .emu
            .autocomplete(
                CH,
                &director(),
                "decide",
                vec![CommandOpt::focused_string("job", "mod")],
            )
            .unwrap();
        let cb = bot.emu.wait_callback(&ac, WAIT).await.unwrap();
        assert_eq!(cb["type"], 8);
        assert_eq!(
            cb["data"]["choices"],
            serde_json::json!([{"name": "model_3", "value": "model_3"}])
        );
        // Also inside a subcommand.
        let ac = bot
            .emu
            .autocomplete(
                CH,
                &director(),
                "train",
                vec![CommandOpt::subcommand(
                    "kill",
                    vec![CommandOpt::focused_string("job", "other")],
                )],
            )
            .unwrap();
        let cb = bot.emu.wait_callback(&ac, WAIT).await.unwrap();
        assert_eq!(
            cb["data"]["choices"],
            serde_json::json!([{"name": "other_job", "value": "other_job"}])
        );
        bot.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_through_an_https_proxy_with_its_own_ca() {
    bounded(async move {
        let mut bot = Bot::start_with(true).await;
        bot.send(error_report("model_3", 2, 1));
        let m = bot.report(CH, |m| title(m).contains("ERROR DETECTED")).await;
        let posts = bot
            .emu
            .wait_for(
                |r| {
                    r.iter()
                        .any(|q| q.method == "POST" && q.path == format!("/channels/{CH}/messages"))
                },
                WAIT,
            )
            .await
            .unwrap();
        assert!(posts
            .iter()
            .filter(|q| q.method == "POST" && q.path == format!("/channels/{CH}/messages"))
            .all(|q| q.tls));
        let click = bot
            .emu
            .click_button(CH, id(&m), "tw1:continue:model_3:2:i1", &director())
            .unwrap();
        let (_, command, _) = bot
            .answer(|i| {
                vec![Reply {
                    to: i.by.clone(),
                    accepted: true,
                    text: "continuing to monitor model_3".into(),
                }]
            })
            .await;
        assert!(matches!(
            command,
            Command::Decide {
                decision: Decision::Continue,
                ..
            }
        ));
        let f = bot.followup(&click.token).await;
        assert_eq!(f.body.json().unwrap()["flags"], 64);
        assert!(f.tls);
        bot.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_posted_before_a_restart_still_works_after_it() {
    bounded(async move {
        let bot = Bot::start().await;
        bot.send(error_report("model_3", 3, 5));
        let m = bot.report(CH, |m| title(m).contains("ERROR DETECTED")).await;
        bot.drained().await;
        let Bot {
            emu,
            mut running,
            store,
            dir,
            ..
        } = bot;
        running.take().unwrap().shutdown().await;
        let (tx, mut inbound) = mpsc::channel(16);
        let (_chat, running) = connect(setup(&emu, dir.path()), store.clone(), tx).await.unwrap();
        emu.wait_gateway(|g| g.identifies >= 2, WAIT).await.unwrap();
        emu.wait_ready(WAIT).await.unwrap();
        emu.click_button(CH, id(&m), "tw1:investigate:model_3:3:i5", &director())
            .unwrap();
        let got = tokio::time::timeout(WAIT, inbound.recv()).await.unwrap().unwrap();
        assert_eq!(
            got.command,
            Command::Decide {
                decision: Decision::Investigate,
                target: Some((RunId(3), DecisionPoint::Incident(5))),
                extend: None
            }
        );
        got.reply.send(vec![]).unwrap();
        running.shutdown().await;
        emu.shutdown().await.unwrap();
    })
    .await;
}

/// A valid `w`×1 grey PNG (different widths give different files).
fn tiny_png(w: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, 1);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&vec![128u8; w as usize]).unwrap();
    }
    out
}

fn with_chart(out: Outgoing, path: PathBuf) -> Outgoing {
    let Outgoing::Post(mut m) = out else {
        panic!("not a post")
    };
    m.attachments = vec![path];
    Outgoing::Post(m)
}

fn attachment_of(bot: &Bot, m: &Value) -> (String, Vec<u8>) {
    let a = &m["attachments"][0];
    let aid: u64 = a["id"].as_str().unwrap().parse().unwrap();
    (
        a["filename"].as_str().unwrap().to_string(),
        bot.emu.attachment_data(aid).expect("stored attachment"),
    )
}

/// The recorded create-message request (recorded once answered, so waited for).
async fn posted_request(bot: &Bot) -> RecordedRequest {
    let is_post = |r: &RecordedRequest| r.method == "POST" && r.path == format!("/channels/{CH}/messages");
    let reqs = bot.emu.wait_for(|rs| rs.iter().any(is_post), WAIT).await.unwrap();
    reqs.into_iter().find(is_post).unwrap()
}

fn epoch(n: u32) -> impl Fn(&Value) -> bool {
    move |m: &Value| {
        m["embeds"][0]["description"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("epoch {n}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_chart_is_uploaded_shown_in_the_embed_and_replaced_by_the_next() {
    bounded(async move {
        let bot = Bot::start().await;
        let charts = bot.dir.path().join("charts");
        std::fs::create_dir_all(&charts).unwrap();
        let (one, two) = (tiny_png(3), tiny_png(5));
        std::fs::write(charts.join("status-1.png"), &one).unwrap();
        std::fs::write(charts.join("status-2.png"), &two).unwrap();

        bot.send(with_chart(status(1, 30), charts.join("status-1.png")));
        let first = bot.report(CH, epoch(1)).await;
        assert_eq!(
            attachment_of(&bot, &first),
            ("status-1.png".to_string(), one.clone())
        );
        assert_eq!(first["embeds"][0]["image"]["url"], "attachment://status-1.png");
        // The upload is multipart and still asks Discord to post it at most once.
        let post = posted_request(&bot).await;
        assert_eq!(post.body.files().len(), 1);
        assert_eq!(post.body.files()[0].content_type.as_deref(), Some("image/png"));
        let payload = post.body.json().unwrap();
        assert_eq!(payload["enforce_nonce"], true);
        assert!(payload["nonce"].is_string());

        // Edit mode: the same message now shows the newer chart, and only that one.
        bot.send(with_chart(status(2, 60), charts.join("status-2.png")));
        let second = bot.report(CH, epoch(2)).await;
        assert_eq!(id(&first), id(&second), "the same message, edited");
        assert_eq!(second["attachments"].as_array().unwrap().len(), 1);
        assert_eq!(attachment_of(&bot, &second), ("status-2.png".to_string(), two));
        assert_eq!(second["embeds"][0]["image"]["url"], "attachment://status-2.png");

        // The next chart is gone by the time it is sent: the status still updates, and
        // no longer shows a chart of older numbers.
        bot.send(with_chart(status(3, 90), charts.join("status-3.png")));
        let third = bot.report(CH, epoch(3)).await;
        assert_eq!(id(&first), id(&third));
        assert_eq!(third["attachments"], serde_json::json!([]));
        assert!(third["embeds"][0].get("image").is_none());
        assert_eq!(bot.reports(CH).len(), 1);
        bot.drained().await;
        bot.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_chart_does_not_hold_back_the_message() {
    bounded(async move {
        let bot = Bot::start().await;
        let gone = bot.dir.path().join("charts").join("status-1.png");
        bot.send(with_chart(status(1, 30), gone));
        let m = bot.report(CH, epoch(1)).await;
        assert_eq!(m["attachments"], serde_json::json!([]));
        assert!(m["embeds"][0].get("image").is_none());
        let post = posted_request(&bot).await;
        assert!(
            post.headers
                .get("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "without files the body stays JSON"
        );
        bot.drained().await;
        bot.stop().await;
    })
    .await;
}

/// The outbox row of the entry for report `key`: (last error, sent).
fn outbox_row(dir: &std::path::Path, key: &str) -> (Option<String>, bool) {
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    db.query_row(
        "SELECT last_error, sent_at IS NOT NULL FROM outbox WHERE key = ?1",
        [key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn content(m: &Value) -> &str {
    m["content"].as_str().unwrap_or("")
}

/// Discord refuses the report's full form (400 Invalid Form Body): the refusal is recorded
/// on its outbox row with what Discord said, and the report reaches the channel in its
/// plain-text form: the pings, the title, the error line, what to decide and how.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_discord_refuses_is_recorded_and_posted_as_plain_text() {
    bounded(async move {
        let bot = Bot::start().await;
        bot.emu
            .refuse(Refusal::body_containing("shape mismatch").times(1));
        bot.send(error_report("model_3", 1, 1));
        let plain = bot
            .emu
            .wait_message(CH, |m| content(m).contains("ERROR DETECTED"), WAIT)
            .await
            .unwrap();
        let text = content(&plain);
        assert!(
            text.starts_with(&format!("<@&{DIRECTOR_ROLE}> <@{TRANSLATOR}>")),
            "{text}"
        );
        for needed in [
            "model_3",
            "Category: implementation",
            "RuntimeError: shape mismatch",
            // The buttons' labels here are the decisions' names.
            "restart `/decide job:model_3 decision:restart`",
            "kill `/decide job:model_3 decision:kill`",
            "Invalid Form Body",
        ] {
            assert!(text.contains(needed), "{needed:?} missing from {text}");
        }
        assert!(!text.contains("@everyone"), "log text stays neutralised: {text}");
        assert_eq!(plain["embeds"], serde_json::json!([]));
        bot.drained().await;
        let (error, sent) = outbox_row(bot.dir.path(), "incident-1");
        let error = error.unwrap();
        assert!(sent);
        assert!(
            error.starts_with("refused by Discord: 400") && error.contains("50035"),
            "{error}"
        );
        assert!(error.ends_with("delivered as plain text"), "{error}");
        // The pings of the plain form are the report's own.
        let is_post = |q: &&RecordedRequest| q.method == "POST" && q.path.ends_with("/messages");
        let reqs = bot
            .emu
            .wait_for(|r| r.iter().filter(is_post).count() >= 2, WAIT)
            .await
            .unwrap();
        let posts: Vec<Value> = reqs
            .iter()
            .filter(is_post)
            .filter_map(|q| q.body.json().cloned())
            .collect();
        assert_eq!(posts.len(), 2, "the full form, then the plain one");
        assert_eq!(posts[0]["allowed_mentions"], posts[1]["allowed_mentions"]);
        assert_eq!(posts[0]["nonce"], posts[1]["nonce"], "one message, one nonce");
        bot.stop().await;
    })
    .await;
}

/// When Discord refuses the plain-text form too, the entry is abandoned with both errors
/// kept in the store, and the channel goes on: the next message is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_in_both_forms_is_kept_in_the_store_and_blocks_nothing() {
    bounded(async move {
        let bot = Bot::start().await;
        bot.emu.refuse(Refusal::body_containing("shape mismatch"));
        bot.send(error_report("model_3", 1, 1));
        bot.send(notice("model_3", 1, "delivered after the refusal"));
        bot.report(CH, |m| m.to_string().contains("delivered after the refusal"))
            .await;
        bot.drained().await;
        let (error, sent) = outbox_row(bot.dir.path(), "incident-1");
        let error = error.unwrap();
        assert!(sent, "marked done, so it does not block its channel");
        assert!(
            error.starts_with("abandoned: 400") && error.contains("its plain-text form too: 400"),
            "{error}"
        );
        assert!(
            !bot.emu
                .messages(CH)
                .iter()
                .any(|m| m.to_string().contains("shape mismatch")),
            "Discord took neither form"
        );
        bot.stop().await;
    })
    .await;
}

/// A persona mapped to more roles than Discord allows mentions for: the report still goes
/// out (Discord refuses more than 100 with 400), pinging the first 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_mentions_are_capped_at_discords_100() {
    bounded(async move {
        let many: Vec<DiscordPrincipal> = (0..150)
            .map(|i| DiscordPrincipal::Role(700_000_000_000_000_000 + i))
            .collect();
        let bot = Bot::start_adjusted(false, |s| s.personas[0].1 = many).await;
        bot.send(error_report("model_3", 1, 1));
        let m = bot.report(CH, |m| title(m).contains("ERROR DETECTED")).await;
        // A request is recorded once it has been answered, maybe after the message shows.
        let is_post = |q: &RecordedRequest| q.method == "POST" && q.path.ends_with("/messages");
        let reqs = bot.emu.wait_for(|r| r.iter().any(is_post), WAIT).await.unwrap();
        let sent = reqs.into_iter().find(is_post).unwrap();
        assert_eq!(sent.status, 200);
        let roles = sent.body.json().unwrap()["allowed_mentions"]["roles"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(roles.len(), MAX_ALLOWED_MENTIONS);
        assert_eq!(roles[0], 700_000_000_000_000_000u64, "the config's first ones");
        assert!(content(&m).contains("<@&700000000000000000>"));
        bot.stop().await;
    })
    .await;
}

/// The emulator holds Discord's line: more than 100 allowed mentions is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_more_than_100_allowed_mentions() {
    bounded(async move {
        let emu = Emulator::start(EmulatorConfig {
            https_proxy: false,
            ..Default::default()
        })
        .await
        .unwrap();
        let ids: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        let res = reqwest::Client::new()
            .post(format!("{}/api/v10/channels/{CH}/messages", emu.proxy_url()))
            .header("user-agent", trainwatch::chat::discord::rest::USER_AGENT)
            .json(&serde_json::json!({"content": "x", "allowed_mentions": {"roles": ids}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], 50035);
        assert!(body["errors"]["allowed_mentions"]["roles"].is_object(), "{body}");
        emu.shutdown().await.unwrap();
    })
    .await;
}

fn command_writes(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|q| q.method == "PUT" && q.path.ends_with("/commands"))
        .count()
}

fn command_reads(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path.ends_with("/commands"))
        .count()
}

/// A slash command's round trip: whatever the bot did when its session began is done.
async fn round_trip(bot: &mut Bot) {
    let cmd = bot
        .emu
        .slash_command(
            CH,
            &director(),
            "train",
            vec![CommandOpt::subcommand("list", vec![])],
        )
        .unwrap();
    bot.emu.wait_callback(&cmd, WAIT).await.unwrap();
    bot.emu
        .wait_for(
            |r| {
                r.iter()
                    .any(|q| q.method == "PATCH" && q.path.contains(&cmd.token))
            },
            WAIT,
        )
        .await
        .unwrap();
}

/// Slash commands are written once: a new gateway session (an invalidated session, then a
/// restart of the bot) reads what Discord has and writes nothing when it is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands_are_registered_only_when_they_changed() {
    bounded(async move {
        let mut bot = Bot::start().await;
        assert_eq!(command_writes(&bot.emu), 1, "the first session registers them");
        let registered = bot.emu.guild_commands(bot.emu.config().guild_id);

        // A new session on the same connection's bot (not a resume: READY again).
        bot.emu.gateway_invalid_session(false);
        bot.emu.wait_gateway(|g| g.ready_sent >= 2, WAIT).await.unwrap();
        bot.emu
            .wait_for(
                |r| {
                    r.iter()
                        .filter(|q| q.method == "GET" && q.path.ends_with("/commands"))
                        .count()
                        >= 2
                },
                WAIT,
            )
            .await
            .unwrap();
        round_trip(&mut bot).await;
        assert_eq!(command_writes(&bot.emu), 1, "a new session writes nothing");

        // The bot restarts.
        bot.running.take().unwrap().shutdown().await;
        let (tx, inbound) = mpsc::channel(16);
        let (_chat, running) = connect(setup(&bot.emu, bot.dir.path()), bot.store.clone(), tx)
            .await
            .unwrap();
        bot.running = Some(running);
        bot.inbound = inbound;
        bot.emu
            .wait_for(
                |r| {
                    r.iter()
                        .filter(|q| q.method == "GET" && q.path.ends_with("/commands"))
                        .count()
                        >= 3
                },
                WAIT,
            )
            .await
            .unwrap();
        bot.emu.wait_ready(WAIT).await.unwrap();
        round_trip(&mut bot).await;
        assert_eq!(command_writes(&bot.emu), 1, "a restart writes nothing");
        assert!(command_reads(&bot.emu) >= 3);
        assert_eq!(bot.emu.guild_commands(bot.emu.config().guild_id), registered);
        bot.stop().await;
    })
    .await;
}

//! `trainwatch serve` end to end in Discord, the flows `serve_e2e.rs` does not cover: a
//! warning noticed while the run goes on, a run that fails, a fix REJECTED and the rework
//! that follows, the Kill button, `/decide` (and continue with an extension), `/train
//! status|logs|list` with answers larger than one Discord message, a gateway drop with a
//! click made during the gap, and a bot restart while a gate is open. Real binary, real job
//! processes, the local Discord emulator; set-up shared through `support/serve.rs`. Waits
//! are bounded; every process started is killed by PID when a test ends.

use discord_emulator::{CommandOpt, EmuUser, Emulator, InjectedInteraction, RecordedRequest};
use serde_json::Value;

#[path = "support/serve.rs"]
mod serve;

use serve::*;

/// Discord's limit on a message's content.
const MAX_CONTENT: usize = 2000;

fn slash(emu: &Emulator, user: &EmuUser, name: &str, opts: Vec<CommandOpt>) -> InjectedInteraction {
    emu.slash_command(CH, user, name, opts).unwrap()
}

/// Every part of the bot's answer to a slash command, in order: the deferred reply filled
/// in, then its follow-ups. Waits until `done` holds on the parts.
async fn answer_parts(emu: &Emulator, cmd: &InjectedInteraction, done: impl Fn(&str) -> bool) -> Vec<String> {
    let token = cmd.token.clone();
    let parts = |reqs: &[RecordedRequest]| -> Vec<String> {
        reqs.iter()
            .filter(|q| q.path.contains(&token))
            .filter(|q| {
                (q.method == "PATCH" && q.path.ends_with("/messages/@original"))
                    || (q.method == "POST" && q.path.starts_with("/webhooks/"))
            })
            .filter_map(|q| q.body.json()?["content"].as_str().map(String::from))
            .collect()
    };
    match emu.wait_for(|r| done(&parts(r).join("\n")), WAIT).await {
        Ok(reqs) => parts(&reqs),
        Err(e) => panic!(
            "{e}: the answer never held what was expected; got {:?}",
            parts(&emu.requests())
        ),
    }
}

fn assert_each_fits(parts: &[String]) {
    for p in parts {
        assert!(
            p.encode_utf16().count() <= MAX_CONTENT,
            "a part is {} long",
            p.len()
        );
    }
}

/// A job that prints a convergence warning, goes on, then a 10 KB line, and waits.
const WARNS: &str = r#"
[jobs.wl]
argv = ["sh", "-c", '''
echo "epoch 1 step 1/100 loss=0.9"
echo "train.py:42: ConvergenceWarning: lbfgs failed to converge (status=1)"
echo "  warnings.warn("
echo "epoch 1 step 2/100 loss=0.8"
printf 'epoch 1 step 3/100 %s\n' "$(head -c 10240 /dev/zero | tr '\0' y)"
sleep 60
''']
expected = "10m"
max = "20m"
status_interval = "1h"

[jobs.bad]
argv = ["./no-such-trainer"]
expected = "10m"
max = "20m"
"#;

/// 28 more jobs with long names: `/train list` then holds 30 lines, over 2000 characters.
fn many_jobs() -> (String, Vec<String>) {
    let names: Vec<String> = (0..28)
        .map(|i| format!("hierarchical_bayesian_model_variant_longer_name_{i:02}"))
        .collect();
    let toml = names
        .iter()
        .map(|n| format!("[jobs.{n}]\nargv = [\"true\"]\nexpected = \"10m\"\nmax = \"20m\"\n"))
        .collect::<Vec<_>>()
        .join("\n");
    (toml, names)
}

/// Warning noticed (the run goes on, the modeler pinged); `/train status` whose last log
/// line is 10 KB, `/train logs`, `/train list` of 30 jobs — each answer whole, over several
/// messages when needed; a job that cannot start ends in "Training Failed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warning_status_logs_list_and_a_failed_run() {
    let (filler, names) = many_jobs();
    let roles = format!("modeler = [\"role:{MODELER_ROLE}\"]");
    let (emu, _dir, mut serve) = serving(Via::Proxy, "new", &roles, &format!("{WARNS}\n{filler}")).await;
    let (_, pid) = start_job(&emu, &mut serve, "wl").await;

    let warning = report(&emu, &serve, "Warning noticed").await;
    assert!(
        description(&warning).contains("ConvergenceWarning: lbfgs failed to converge"),
        "{warning}"
    );
    assert_eq!(
        warning["content"],
        format!("<@&{MODELER_ROLE}>"),
        "the category's owner is pinged"
    );
    assert!(alive(pid), "a warning does not stop the run");
    assert_eq!(count_titled(&emu, "ERROR DETECTED"), 0);

    // /train status once the 10 KB line is the last one: the counts after it still arrive.
    let mut status = Vec::new();
    for _ in 0..50 {
        let cmd = train(&emu, &director(), "status", "wl");
        // Whole once it has its counts and, when the long line is the last, all of it.
        status = answer_parts(&emu, &cmd, |t| {
            let t = t.replace("\n↪ ", "");
            t.contains("incident(s)") && (!t.contains("yyyy") || t.contains(&"y".repeat(10_240)))
        })
        .await;
        if status.concat().contains("yyyyyyyy") {
            break;
        }
    }
    let all = status.concat().replace("↪ ", "");
    assert!(
        all.contains(&"y".repeat(10_240)),
        "the whole last line: {status:?}"
    );
    assert!(all.contains("1 incident(s), 0 fatal"), "{status:?}");
    assert!(status.len() > 1, "10 KB do not fit one message");
    assert_each_fits(&status);

    let cmd = slash(
        &emu,
        &director(),
        "train",
        vec![CommandOpt::subcommand(
            "logs",
            vec![CommandOpt::string("job", "wl"), CommandOpt::integer("lines", 3)],
        )],
    );
    let logs = answer_parts(&emu, &cmd, |t| t.contains("```")).await;
    assert!(logs[0].contains("epoch 1 step 2/100 loss=0.8"), "{logs:?}");
    assert_each_fits(&logs);

    let cmd = slash(
        &emu,
        &director(),
        "train",
        vec![CommandOpt::subcommand("list", vec![])],
    );
    let last = format!("• {} → <#{CH}>", names.last().unwrap());
    let list = answer_parts(&emu, &cmd, |t| t.contains(&last)).await;
    assert!(list.len() > 1, "30 jobs of long names do not fit one message");
    assert_each_fits(&list);
    let joined = list.join("\n");
    for job in names.iter().map(String::as_str).chain(["wl", "bad"]) {
        assert!(
            joined.contains(&format!("• {job} → <#{CH}>")),
            "{job} missing: {list:?}"
        );
    }

    // A job whose program is missing: the run ends, reported as failed.
    let cmd = train(&emu, &director(), "start", "bad");
    command_answer(&emu, &cmd).await;
    let failed = report(&emu, &serve, "Training Failed").await;
    assert!(description(&failed).contains("could not start"), "{failed}");
    assert!(alive(pid), "another job's failure leaves this run alone");
    serve.stop();
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// `/decide JOB DECISION [extend]` as `user`.
fn decide(
    emu: &Emulator,
    user: &EmuUser,
    job: &str,
    decision: &str,
    extend: Option<&str>,
) -> InjectedInteraction {
    let mut opts = vec![
        CommandOpt::string("job", job),
        CommandOpt::string("decision", decision),
    ];
    if let Some(e) = extend {
        opts.push(CommandOpt::string("extend", e));
    }
    slash(emu, user, "decide", opts)
}

/// A serve with demo job `job` started from Discord and halted by its error: the emulator,
/// the folder, the serve, the error report, the run's PID.
async fn failed_run(job: &str) -> (Emulator, tempfile::TempDir, Serve, Value, i32) {
    let (emu, dir, mut serve) = serving(
        Via::Proxy,
        "new",
        "",
        &demo(job, 30, 30, 8, "status_interval = \"1h\""),
    )
    .await;
    let (_, pid) = start_job(&emu, &mut serve, job).await;
    let error = report(&emu, &serve, "ERROR DETECTED").await;
    (emu, dir, serve, error, pid)
}

/// The Kill button on an error report ends the run ("Training Killed", the report closed);
/// on the next run's error, `/decide JOB restart` resumes it from its checkpoint to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_button_then_decide_restart() {
    let (emu, _dir, mut serve, error, pid) = failed_run("mk").await;
    let error_id: u64 = error["id"].as_str().unwrap().parse().unwrap();
    let click = emu
        .click_button(CH, error_id, &button(&error, "kill"), &director())
        .unwrap();
    let answer = click_answer(&emu, &click).await;
    assert!(answer["content"].as_str().unwrap().starts_with('✅'), "{answer}");
    let killed = report(&emu, &serve, "Training Killed").await;
    assert!(description(&killed).contains("Killed by @ann"), "{killed}");
    wait_closed(&emu, &error["id"]).await;
    assert!(!alive(pid), "the run's process is gone");

    // A new run fails the same way; this time the director decides by command.
    let cmd = train(&emu, &director(), "start", "mk");
    command_answer(&emu, &cmd).await;
    let second = report_where(&emu, &serve, "ERROR DETECTED", |m| m["id"] != error["id"]).await;
    let cmd = decide(&emu, &director(), "mk", "restart", None);
    let answer = command_answer(&emu, &cmd).await;
    assert!(answer.starts_with('✅'), "{answer}");
    let restarting = report(&emu, &serve, "Restarting").await;
    serve.watch_pid(number_after(description(&restarting), "New process started: PID"));
    assert!(
        description(&restarting).contains("Resumed from checkpoint"),
        "{restarting}"
    );
    wait_closed(&emu, &second["id"]).await;
    let done = report(&emu, &serve, "Training Complete").await;
    assert!(description(&done).contains("SUCCESS"), "{done}");
    serve.stop();
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// After a TIMEOUT WARNING, `/decide JOB continue extend:2h` goes on monitoring with the
/// next warning two hours on: the warning is closed, the decision posted, the run alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_with_an_extension_after_a_timeout_warning() {
    let (emu, _dir, mut serve) = serving(Via::Proxy, "new", "", &slow_sampler("m6", "1h")).await;
    let (_, pid) = start_job(&emu, &mut serve, "m6").await;
    let warning = report(&emu, &serve, "TIMEOUT WARNING").await;

    let cmd = decide(&emu, &director(), "m6", "continue", Some("2h"));
    let answer = command_answer(&emu, &cmd).await;
    assert!(
        answer.contains("continuing to monitor m6; next timeout warning in 2h"),
        "{answer}"
    );
    wait_closed(&emu, &warning["id"]).await;
    let noted = report_where(&emu, &serve, "", |m| {
        description(m).contains("next timeout warning in 2h")
    })
    .await;
    assert!(!noted["embeds"].as_array().unwrap().is_empty());
    assert!(alive(pid), "continuing leaves the run going");
    // The next warning is two hours away: killing it now, the run saw one warning.
    let cmd = train(&emu, &director(), "kill", "m6");
    command_answer(&emu, &cmd).await;
    report(&emu, &serve, "Training Killed").await;
    assert_eq!(count_titled(&emu, "TIMEOUT WARNING"), 1);
    serve.stop();
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// The gateway connection drops while a job runs (past its maximum, its TIMEOUT WARNING
/// open); the director clicks "Continue monitoring" during the gap. The bot RESUMEs,
/// receives the click and carries it out once: the warning closed, the job still running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_during_a_gateway_drop_is_carried_out_after_the_resume() {
    let (emu, _dir, mut serve) = serving(Via::Proxy, "new", "", &slow_sampler("mg", "1h")).await;
    let (_, pid) = start_job(&emu, &mut serve, "mg").await;
    let warning = report(&emu, &serve, "TIMEOUT WARNING").await;
    let warning_id: u64 = warning["id"].as_str().unwrap().parse().unwrap();
    let resumes = emu.gateway_stats().resumes;

    assert!(emu.gateway_drop() > 0, "the bot was connected");
    emu.wait_disconnected(WAIT).await.unwrap();
    assert!(alive(pid), "the job runs on through the gap");
    // Injected while no connection carries the session: replayed on RESUME.
    let click = emu
        .click_button(CH, warning_id, &button(&warning, "continue"), &director())
        .unwrap();
    emu.wait_gateway(|g| g.resumes > resumes, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}: the bot never resumed\n{}", serve.logs()));
    let answer = click_answer(&emu, &click).await;
    let text = answer["content"].as_str().unwrap();
    assert!(
        text.starts_with('✅') && text.contains("continuing to monitor mg"),
        "{answer}"
    );
    wait_closed(&emu, &warning["id"]).await;
    assert!(alive(pid), "continuing leaves the job running");
    let cmd = train(&emu, &director(), "kill", "mg");
    command_answer(&emu, &cmd).await;
    report(&emu, &serve, "Training Killed").await;
    serve.stop();
    // Counted once serve has stopped (a request is recorded after its answer).
    assert_eq!(edits_of(&emu, &warning["id"], 0), 1, "one click, one decision");
    let noted = reports(&emu)
        .iter()
        .filter(|m| description(m).contains("continuing to monitor mg"))
        .count();
    assert_eq!(noted, 1, "the replayed click is carried out once");
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// The design rows of the gate test: 30 parameters read from `params.toml`.
const ROWS: usize = 30;

fn row(i: usize) -> String {
    format!("hierarchical_prior_scale_{i:02}")
}

fn write_params(dir: &std::path::Path, value: u32) {
    let text: String = (0..ROWS).map(|i| format!("{} = {value}\n", row(i))).collect();
    std::fs::write(dir.join("params.toml"), text).unwrap();
}

/// `/fix submit` by the code translator.
async fn submit_fix(emu: &Emulator, job: &str, summary: &str) -> String {
    let cmd = slash(
        emu,
        &translator(),
        "fix",
        vec![CommandOpt::subcommand(
            "submit",
            vec![
                CommandOpt::string("job", job),
                CommandOpt::string("summary", summary),
            ],
        )],
    );
    command_answer(emu, &cmd).await
}

/// Everything Discord received for the bot's posts titled `needle`: each body's
/// description and the text of each attached markdown file (charts aside). Waits for `n`
/// such posts (a request is recorded once answered, which may be after the message is stored).
async fn received_text(emu: &Emulator, needle: &str, n: usize) -> (Vec<String>, Vec<String>) {
    let posts = |reqs: &[RecordedRequest]| -> Vec<RecordedRequest> {
        reqs.iter()
            .filter(|q| q.method == "POST" && q.status == 200)
            .filter(|q| q.body.json().is_some_and(|b| title(b).contains(needle)))
            .cloned()
            .collect()
    };
    let reqs = emu.wait_for(|r| posts(r).len() >= n, WAIT).await.unwrap();
    let mut embeds = Vec::new();
    let mut files = Vec::new();
    for q in posts(&reqs) {
        embeds.push(description(q.body.json().unwrap()).to_string());
        files.extend(
            q.body
                .files()
                .iter()
                .filter(|f| f.filename.as_deref().is_some_and(|n| n.ends_with(".md")))
                .map(|f| String::from_utf8_lossy(&f.data).into_owned()),
        );
    }
    (embeds, files)
}

/// A gate of 30 design rows: the verdict (score, every row outside tolerance) heads the
/// message and every row reaches Discord (the complete table attached). The validator
/// REJECTS; restart stays refused; the rework opens a new gate. The bot restarts while
/// that gate is open: the Approve button posted before still works, and the four-eyes
/// rule still holds (the submitter, who holds the validator role, is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_fix_rework_and_a_bot_restart_during_the_gate() {
    let design: String = (0..ROWS)
        .map(|i| {
            format!(
                "[[jobs.mr.design]]\nname = \"{n}\"\nexpected = 1000\ntolerance = \"±10%\"\nfrom = {{ file = \"params.toml\", key = \"{n}\" }}\n",
                n = row(i)
            )
        })
        .collect();
    let job = demo("mr", 30, 30, 8, &format!("status_interval = \"1h\"\n{design}"));
    let roles = format!("time_validator = [\"user:{VALIDATOR}\", \"role:{TRANSLATOR_ROLE}\"]");
    let (emu, dir, mut serve) = serving(Via::Proxy, "new", &roles, &job).await;
    write_params(dir.path(), 1000);
    start_job(&emu, &mut serve, "mr").await;
    let error = report(&emu, &serve, "ERROR DETECTED").await;
    let error_id: u64 = error["id"].as_str().unwrap().parse().unwrap();

    // Fix 1 doubles every parameter: all 30 rows outside tolerance.
    write_params(dir.path(), 2000);
    let answer = submit_fix(&emu, "mr", "double the priors").await;
    assert!(answer.contains("changes design parameters"), "{answer}");
    let gate = report(&emu, &serve, "RE-VALIDATION REQUIRED").await;
    let (embeds, files) = received_text(&emu, "RE-VALIDATION REQUIRED", 1).await;
    let desc = &embeds[0];
    let score = desc
        .find("Overall score: 0% (0/30 within tolerance) — 30 row(s) NOT within tolerance")
        .unwrap_or_else(|| panic!("the verdict heads the gate: {desc}"));
    let everything = format!("{}\n{}", embeds.join("\n"), files.join("\n"));
    for i in 0..ROWS {
        let violated = format!("  {}: actual 2000 (design 1000, tolerance ±10%)", row(i));
        let at = desc
            .find(&violated)
            .unwrap_or_else(|| panic!("row {i} not in the verdict: {desc}"));
        assert!(score < at);
        assert!(
            everything
                .lines()
                .any(|l| l.starts_with(&row(i)) && l.contains("| 2000") && l.contains("outside")),
            "table row {i} never reached Discord"
        );
    }
    // 30 rows with their verdict do not fit one embed: the rest is attached, and said so.
    assert_eq!(files.len(), 1, "{desc}");
    assert!(desc.contains("attached as `mr-run1-gate-1.md`"), "{desc}");
    assert!(files[0].contains("Comparison with the Design Expectations Table (all 30 rows)"));

    // The CHANGES SUMMARY posted with the fix: every parameter's before → after.
    let (embeds, files) = received_text(&emu, "Fix submitted", 1).await;
    let summary = format!("{}\n{}", embeds.join("\n"), files.join("\n"));
    for i in 0..ROWS {
        let change = format!("  - {}: Before: 1000 → After: 2000", row(i));
        assert!(summary.contains(&change), "{change:?} never reached Discord");
    }

    // REJECT: the director still may not restart.
    let gate_id: u64 = gate["id"].as_str().unwrap().parse().unwrap();
    let click = emu
        .click_button(CH, gate_id, &button(&gate, "reject"), &validator())
        .unwrap();
    click_answer(&emu, &click).await;
    let rejected = report(&emu, &serve, "Fix REJECTED").await;
    assert!(
        rejected["embeds"][0]["footer"]["text"]
            .as_str()
            .unwrap()
            .contains("full rework required"),
        "{rejected}"
    );
    let click = emu
        .click_button(CH, error_id, &button(&error, "restart"), &director())
        .unwrap();
    let refusal = click_answer(&emu, &click).await;
    assert!(
        refusal["content"].as_str().unwrap().starts_with('⛔'),
        "{refusal}"
    );
    assert_eq!(count_titled(&emu, "Restarting"), 0);

    // The rework stays within tolerance: a new gate, all rows within.
    write_params(dir.path(), 1050);
    submit_fix(&emu, "mr", "rework within the design").await;
    let gate2 = report_where(&emu, &serve, "RE-VALIDATION REQUIRED", |m| m["id"] != gate["id"]).await;
    let (embeds, _) = received_text(&emu, "RE-VALIDATION REQUIRED", 2).await;
    assert!(
        embeds
            .iter()
            .any(|d| d.starts_with("@time_validator: RE-VALIDATION REQUIRED")
                && d.contains("Overall score: 100% (30/30 within tolerance) — every row within tolerance")),
        "{embeds:?}"
    );
    let gate2_id: u64 = gate2["id"].as_str().unwrap().parse().unwrap();
    let approve = button(&gate2, "approve");

    // The bot restarts while the gate is open.
    serve.stop();
    serve.spawn();
    bot_ready(&emu, &serve, 2).await;
    let click = emu.click_button(CH, gate2_id, &approve, &translator()).unwrap();
    let refusal = click_answer(&emu, &click).await;
    assert!(
        refusal["content"].as_str().unwrap().contains("four eyes"),
        "{refusal}"
    );
    assert_eq!(count_titled(&emu, "Fix APPROVED"), 0);
    let click = emu.click_button(CH, gate2_id, &approve, &validator()).unwrap();
    click_answer(&emu, &click).await;
    report(&emu, &serve, "Fix APPROVED").await;
    let click = emu
        .click_button(
            CH,
            error_id,
            &button(&current(&emu, &error["id"]), "restart"),
            &director(),
        )
        .unwrap();
    click_answer(&emu, &click).await;
    let restarting = report(&emu, &serve, "Restarting").await;
    serve.watch_pid(number_after(description(&restarting), "New process started: PID"));
    report(&emu, &serve, "Training Complete").await;
    serve.stop();
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// The path of output `i` of the completion test, under the job's folder.
fn output(i: usize) -> String {
    format!("output/results/posterior/chain_{i:02}/model_mo_posterior_draws_full_resolution.parquet")
}

/// A completion report with 42 output files: every one reaches Discord with its size (the
/// complete report attached, and said so), "SUCCESS" first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_report_with_42_outputs_reaches_discord_whole() {
    let outputs: Vec<String> = (0..42).map(|i| format!("\"{}\"", output(i))).collect();
    let job = format!(
        r#"
[jobs.mo]
argv = ["sh", "-c", 'for i in $(seq -w 0 41); do d=output/results/posterior/chain_$i; mkdir -p $d; echo draws > $d/model_mo_posterior_draws_full_resolution.parquet; done; echo "epoch 1 step 1/1 loss=0.1"']
expected = "10m"
max = "20m"
status_interval = "1h"
outputs = [{}]
"#,
        outputs.join(", ")
    );
    let (emu, _dir, mut serve) = serving(Via::Proxy, "new", "", &job).await;
    start_job(&emu, &mut serve, "mo").await;
    report(&emu, &serve, "Training Complete").await;
    let (embeds, files) = received_text(&emu, "Training Complete", 1).await;
    let desc = &embeds[0];
    assert!(desc.starts_with("Model: mo\nStatus: SUCCESS"), "{desc}");
    assert_eq!(files.len(), 1, "42 long paths do not fit one embed: {desc}");
    assert!(desc.contains("attached as `mo-run1-final.md`"), "{desc}");
    for i in 0..42 {
        let path = output(i);
        assert!(
            files[0].lines().any(|l| l.contains(&path) && l.contains("(6 B)")),
            "{path} and its size never reached Discord"
        );
    }
    serve.stop();
    drop(serve);
    emu.shutdown().await.unwrap();
}

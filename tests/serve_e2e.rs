//! `trainwatch serve` end to end in Discord: the real binary, real job processes, and the
//! local Discord emulator (REST + gateway on 127.0.0.1) playing Discord and the team.
//! Each test drives the protocol the way people would — slash commands and button clicks —
//! and checks what the channel shows. Waits are bounded liveness limits, never timing
//! assertions; every serve process (and every job it started) is killed when a test ends,
//! even when it fails.

use std::collections::BTreeSet;
use std::time::Duration;

use discord_emulator::{CommandOpt, Fault};

#[path = "support/serve.rs"]
mod serve;

mod support;

use serve::*;

/// Test 1: start from Discord, an error report that pings the right roles, a refused click,
/// the director's restart (old PID killed, new PID, checkpoint), completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_error_refused_click_restart_complete() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    // The trainer fails at step 8 but its process hangs on afterwards (as a wedged CUDA
    // process does), so Restart has a live process to kill. The wait is bounded.
    let job = format!(
        r#"
[jobs.m1]
argv = ["sh", "-c", "\"$0\" demo-train --name m1 --steps 30 --step-ms 30 --fail-at 8; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 1", "{BIN}"]
expected = "10m"
max = "20m"
status_interval = "1h"
checkpoint = "output/implementation/checkpoints/model_m1_step*.ckpt"
resume_argv = ["{BIN}", "demo-train", "--name", "m1", "--steps", "30", "--step-ms", "30", "--resume", "{{checkpoint}}"]
kill_grace = "2s"
"#
    );
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "new", "", &job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;

    // A user without a role may not start anything.
    let cmd = train(&emu, &outsider(), "start", "m1");
    let answer = command_answer(&emu, &cmd).await;
    assert!(answer.contains("eve may not start jobs"), "{answer}");
    assert_eq!(count_titled(&emu, "Training started"), 0, "{answer}");

    let (started, pid) = start_job(&emu, &mut serve, "m1").await;
    assert!(description(&started).contains("Log file"), "{started}");

    let error = report(&emu, &serve, "ERROR DETECTED").await;
    let content = error["content"].as_str().unwrap();
    assert!(content.contains(&format!("<@&{DIRECTOR_ROLE}>")), "{content}");
    // CUDA out of memory is a resource error: its owner is the code translator.
    assert!(content.contains(&format!("<@&{TRANSLATOR_ROLE}>")), "{content}");
    let posted = post_bodies(&emu, "ERROR DETECTED").await;
    assert_eq!(posted.len(), 1, "posted once");
    let allowed = &posted[0]["allowed_mentions"];
    assert_eq!(allowed["parse"], serde_json::json!([]), "{allowed}");
    let roles: BTreeSet<u64> = allowed["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert_eq!(roles, BTreeSet::from([DIRECTOR_ROLE, TRANSLATOR_ROLE]));
    assert_eq!(allowed["users"], serde_json::json!([]), "{allowed}");
    let embed = serde_json::to_string(&error["embeds"][0]).unwrap();
    assert!(
        embed.contains("CUDA out of memory") && embed.contains("resource"),
        "{embed}"
    );
    assert_eq!(labels(&error), ["Restart", "Kill", "Continue", "Investigate"]);
    let restart = button(&error, "restart");
    assert!(restart.starts_with("tw1:restart:m1:1:"), "{restart}");

    // Someone without the director role clicks Restart: refused, only to them; buttons stay.
    let click = emu
        .click_button(
            CH,
            error["id"].as_str().unwrap().parse().unwrap(),
            &restart,
            &outsider(),
        )
        .unwrap();
    let refusal = click_answer(&emu, &click).await;
    let text = refusal["content"].as_str().unwrap();
    assert!(text.contains("eve"), "the refusal names who tried: {text}");
    assert!(
        text.contains("decisions need the director role"),
        "and says who may: {text}"
    );
    assert_eq!(enabled_buttons(&current(&emu, &error["id"])).len(), 4);
    assert_eq!(count_titled(&emu, "Restarting"), 0);
    assert!(alive(pid), "a refused click does nothing to the job");

    // The director restarts: the old process is killed, the new one resumes from a checkpoint.
    let before_click = emu.requests().len();
    let click = emu
        .click_button(
            CH,
            error["id"].as_str().unwrap().parse().unwrap(),
            &restart,
            &director(),
        )
        .unwrap();
    click_answer(&emu, &click).await;
    let restarting = report(&emu, &serve, "Restarting").await;
    let text = description(&restarting);
    assert_eq!(number_after(text, "Old process killed: PID"), pid, "{text}");
    let new_pid = number_after(text, "New process started: PID");
    serve.watch_pid(new_pid);
    assert_ne!(new_pid, pid);
    assert!(
        text.contains("Resumed from checkpoint") && text.contains("model_m1_step00005.ckpt"),
        "{text}"
    );
    assert!(text.contains("decided by @ann"), "{text}");
    assert!(!alive(pid), "the old process is gone");
    // The decided report's buttons are closed.
    wait_closed(&emu, &error["id"]).await;

    let done = report(&emu, &serve, "Training Complete").await;
    assert!(description(&done).contains("SUCCESS"), "{done}");
    assert!(description(&done).contains("Attempts: 2"), "{done}");
    // One decision, one edit of its report (the engine's resolution, through the outbox).
    assert_eq!(
        edits_of(&emu, &error["id"], before_click),
        1,
        "the decided report is edited once"
    );
    for t in [
        "Training started",
        "ERROR DETECTED",
        "Restarting",
        "Training Complete",
    ] {
        assert_eq!(count_titled(&emu, t), 1, "{t}");
    }
    serve.stop();
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// Test 2: the bot is SIGKILLed while a job runs with an undecided error report; started
/// again, it re-adopts the same process, the report's button posted before the crash
/// still decides, and the channel ends with every report exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_killed_mid_run_readopts_and_old_buttons_still_work() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    // An OOM in the log while the process lives on; it finishes once the test drops `go`
    // (bounded: it gives up after 60 s).
    let job = r#"
[jobs.m2]
argv = ["sh", "-c", "echo 'epoch 1 step 1/2 loss=0.9'; echo 'Traceback (most recent call last):'; echo '  File \"train.py\", line 3, in <module>'; echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB'; i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; [ -e go ] || exit 1; mkdir -p output/results output/implementation/models; echo x > output/results/results_m2.csv; echo y > output/implementation/models/model_m2_full.pkl; echo 'epoch 2 step 2/2 loss=0.3'"]
expected = "10m"
max = "20m"
status_interval = "1h"
"#;
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "new", "", job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    let (_, pid) = start_job(&emu, &mut serve, "m2").await;
    let error = report(&emu, &serve, "ERROR DETECTED").await;
    let cont = button(&error, "continue");
    let error_id: u64 = error["id"].as_str().unwrap().parse().unwrap();

    // The bot dies without any chance to clean up; the job must not notice.
    serve.kill_hard();
    emu.wait_disconnected(WAIT).await.unwrap();
    assert!(alive(pid), "the job survives its supervisor");

    serve.spawn();
    bot_ready(&emu, &serve, 2).await;
    // The button posted by the previous bot process decides on the re-adopted run.
    let click = emu.click_button(CH, error_id, &cont, &director()).unwrap();
    let answer = click_answer(&emu, &click).await;
    let answer = answer["content"].as_str().unwrap();
    assert!(
        !answer.contains("may not") && !answer.contains("no open"),
        "{answer}"
    );
    wait_closed(&emu, &error["id"]).await;
    assert!(alive(pid), "Continue leaves the same process running");

    std::fs::write(dir.path().join("go"), "").unwrap();
    let done = report(&emu, &serve, "Training Complete").await;
    assert!(
        title(&done).contains("run 1"),
        "the re-adopted run completed: {}",
        title(&done)
    );
    assert!(description(&done).contains("SUCCESS"), "{done}");
    serve.stop();
    // Nothing lost, nothing twice: the channel holds exactly what the protocol queued, in
    // its order — one start (no second one after the restart), one error, one completion.
    let queued = outbox_posts(dir.path());
    assert_eq!(channel_posts(&emu), queued);
    let titles: Vec<&str> = queued.iter().map(|(t, _)| t.as_str()).collect();
    for t in [
        "Training started",
        "ERROR DETECTED",
        "Decision",
        "Training Complete",
    ] {
        assert_eq!(
            titles.iter().filter(|x| x.contains(t)).count(),
            1,
            "{t} in {titles:?}"
        );
    }
    assert_eq!(titles.len(), 4, "{titles:?}");
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// Test 3: Discord answers 503 to every new message for a few seconds while a run goes
/// through start, status updates, an error, the policy's restart and completion: afterwards
/// every report is in the channel exactly once, in the order the protocol produced them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_keeps_the_order() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    let job = demo(
        "m3",
        60,
        40,
        20,
        "status_interval = \"300ms\"\non_error = \"restart\"\nrestart_limit = 1",
    );
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "new", "", &job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    let (_, _pid) = start_job(&emu, &mut serve, "m3").await;
    // From now on, creating a message fails for a while (interaction answers still work).
    emu.inject_fault(
        Fault::status(503)
            .on_method("POST")
            .on_path(format!("/channels/{CH}/messages"))
            .for_duration(Duration::from_secs(4)),
    );
    let restarting = report(&emu, &serve, "Restarting").await;
    serve.watch_pid(number_after(description(&restarting), "New process started: PID"));
    report(&emu, &serve, "Training Complete").await;
    serve.stop();

    let refused = emu
        .requests()
        .iter()
        .filter(|q| q.method == "POST" && q.path.ends_with("/messages") && q.status == 503)
        .count();
    assert!(refused > 0, "the outage hit no message");
    // The protocol's order: the outbox, as the engine filled it.
    let expected = outbox_posts(dir.path());
    let seen = channel_posts(&emu);
    let titles: Vec<&str> = expected.iter().map(|(t, _)| t.as_str()).collect();
    for t in [
        "Training started",
        "Status Update",
        "ERROR DETECTED",
        "Restarting",
        "Training Complete",
    ] {
        assert!(titles.iter().any(|x| x.contains(t)), "{t} not in {titles:?}");
    }
    assert_eq!(seen, expected, "the channel differs from the protocol's order");
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// Test 4 (the Phase 4.5 gate in Discord, through the HTTPS-proxy mode): a fix that changes
/// a design parameter needs the time validator's approval before training may resume; the
/// director is refused until then, the submitter may not approve their own fix (four eyes,
/// although they hold the validator role too), the validator approves, and the restart
/// resumes from the checkpoint and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_holds_a_design_change_until_the_validator_approves() {
    let emu = emulator(Via::HttpsProxy).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("params.toml"), "draws = 2000\nchains = 4\n").unwrap();
    let job = demo(
        "m4",
        30,
        30,
        8,
        r#"status_interval = "1h"
[[jobs.m4.design]]
name = "draws"
expected = 2000
tolerance = "±10%"
from = { file = "params.toml", key = "draws" }
[[jobs.m4.design]]
name = "chains"
expected = 4
from = { file = "params.toml", key = "chains" }
"#,
    );
    let roles = format!("time_validator = [\"user:{VALIDATOR}\", \"role:{TRANSLATOR_ROLE}\"]");
    let cfg = write_config(dir.path(), &emu, Via::HttpsProxy, "new", &roles, &job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    let (_, pid) = start_job(&emu, &mut serve, "m4").await;
    let error = report(&emu, &serve, "ERROR DETECTED").await;
    let error_id: u64 = error["id"].as_str().unwrap().parse().unwrap();
    let restart = button(&error, "restart");

    // The code translator's fix halves the draws: a design parameter.
    std::fs::write(dir.path().join("params.toml"), "draws = 1000\nchains = 4\n").unwrap();
    let cmd = emu
        .slash_command(
            CH,
            &translator(),
            "fix",
            vec![CommandOpt::subcommand(
                "submit",
                vec![
                    CommandOpt::string("job", "m4"),
                    CommandOpt::string("summary", "halve the draws to dodge the OOM"),
                ],
            )],
        )
        .unwrap();
    let answer = command_answer(&emu, &cmd).await;
    assert!(answer.contains("changes design parameters (draws)"), "{answer}");
    let gate = report(&emu, &serve, "RE-VALIDATION REQUIRED").await;
    assert!(
        gate["content"]
            .as_str()
            .unwrap()
            .contains(&format!("<@{VALIDATOR}>")),
        "the validator is pinged: {gate}"
    );
    let posted = post_bodies(&emu, "RE-VALIDATION REQUIRED").await;
    let users = &posted[0]["allowed_mentions"]["users"];
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_u64() == Some(VALIDATOR)),
        "{users}"
    );
    let embed = serde_json::to_string(&gate["embeds"][0]).unwrap();
    assert!(
        embed.contains("draws") && embed.contains("2000") && embed.contains("1000"),
        "{embed}"
    );
    assert_eq!(labels(&gate), ["Approve", "Reject"]);
    let gate_id: u64 = gate["id"].as_str().unwrap().parse().unwrap();
    let approve = button(&gate, "approve");

    // The director may not resume yet, and is told why.
    let click = emu.click_button(CH, error_id, &restart, &director()).unwrap();
    let refusal = click_answer(&emu, &click).await;
    let text = refusal["content"].as_str().unwrap();
    assert!(text.contains("until @time_validator approves"), "{text}");
    // Four eyes: the submitter holds the validator role and still may not approve.
    let click = emu.click_button(CH, gate_id, &approve, &translator()).unwrap();
    let refusal = click_answer(&emu, &click).await;
    let text = refusal["content"].as_str().unwrap();
    assert!(text.contains("four eyes"), "{text}");
    assert_eq!(count_titled(&emu, "Fix APPROVED"), 0);
    assert_eq!(count_titled(&emu, "Restarting"), 0);

    // The validator approves; now the director's restart goes through.
    let click = emu.click_button(CH, gate_id, &approve, &validator()).unwrap();
    click_answer(&emu, &click).await;
    report(&emu, &serve, "Fix APPROVED").await;
    let restart_now = button(&current(&emu, &error["id"]), "restart");
    let click = emu.click_button(CH, error_id, &restart_now, &director()).unwrap();
    click_answer(&emu, &click).await;
    let restarting = report(&emu, &serve, "Restarting").await;
    let text = description(&restarting);
    serve.watch_pid(number_after(text, "New process started: PID"));
    // The trainer had exited by itself; the report names its PID. (It says "killed" —
    // the engine does not remember that the process had already ended; see the report.)
    assert!(text.contains(&format!("PID {pid}")), "{text}");
    assert!(
        text.contains("Resumed from checkpoint") && text.contains("model_m4_step00005.ckpt"),
        "{text}"
    );
    let done = report(&emu, &serve, "Training Complete").await;
    assert!(description(&done).contains("SUCCESS"), "{done}");
    serve.stop();
    // Everything went through the HTTPS proxy (CONNECT + the test CA), none around it.
    let reqs = emu.requests();
    assert!(
        !reqs.is_empty() && reqs.iter().all(|q| q.tls),
        "a request bypassed the proxy"
    );
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// Test 5: a run past its maximum gets a TIMEOUT WARNING for the director; Investigate asks
/// the modeler (pinged) and closes the warning; `/train kill` ends the run ("Training
/// Killed", the process group gone); status updates in edit mode stay one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_warning_investigate_then_kill() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    let roles = format!("modeler = [\"role:{MODELER_ROLE}\"]");
    let cfg = write_config(
        dir.path(),
        &emu,
        Via::Proxy,
        "edit",
        &roles,
        &slow_sampler("m5", "300ms"),
    );
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    let (_, pid) = start_job(&emu, &mut serve, "m5").await;

    let warning = report(&emu, &serve, "TIMEOUT WARNING").await;
    assert!(
        serde_json::to_string(&warning["embeds"][0])
            .unwrap()
            .contains(&pid.to_string()),
        "the warning names the PID: {warning}"
    );
    assert_eq!(warning["content"], format!("<@&{DIRECTOR_ROLE}>"));
    assert_eq!(
        labels(&warning),
        ["Continue monitoring", "Investigate", "Terminate and restart"]
    );
    let warning_id: u64 = warning["id"].as_str().unwrap().parse().unwrap();
    let click = emu
        .click_button(CH, warning_id, &button(&warning, "investigate"), &director())
        .unwrap();
    let answer = click_answer(&emu, &click).await;
    assert!(
        answer["content"]
            .as_str()
            .unwrap()
            .contains("asked @modeler to investigate m5"),
        "{answer}"
    );
    // The request goes into a thread on the warning (Discord gives it the message's id).
    let asked = emu
        .wait_message(warning_id, |m| title(m).contains("Investigation requested"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}: no investigation request in the warning's thread"));
    assert!(
        asked["content"]
            .as_str()
            .unwrap()
            .contains(&format!("<@&{MODELER_ROLE}>")),
        "{asked}"
    );
    assert!(alive(pid), "investigating leaves the run going");
    // Investigating is not the decision: the warning still awaits one, untouched.
    assert_eq!(edits_of(&emu, &warning["id"], 0), 0);
    assert_eq!(
        enabled_buttons(&current(&emu, &warning["id"])).len(),
        3,
        "the warning still offers its decisions"
    );

    let cmd = train(&emu, &director(), "kill", "m5");
    command_answer(&emu, &cmd).await;
    let killed = report(&emu, &serve, "Training Killed").await;
    assert!(
        description(&killed).contains(&format!("Killed by @ann (PID {pid})")),
        "{killed}"
    );
    assert!(!alive(pid), "the job's process is gone");
    // The kill decided the warning: closed in place, by one edit.
    wait_closed(&emu, &warning["id"]).await;
    assert_eq!(edits_of(&emu, &warning["id"], 0), 1, "one decision, one edit");
    serve.stop();

    // Edit mode: the status updates were one message, edited in place.
    let titles: Vec<String> = reports(&emu).iter().map(|m| title(m).to_string()).collect();
    assert_eq!(
        titles.iter().filter(|t| t.contains("Status Update")).count(),
        1,
        "{titles:?}"
    );
    let status = reports(&emu)
        .into_iter()
        .find(|m| title(m).contains("Status Update"))
        .unwrap();
    assert!(
        !status["edited_timestamp"].is_null(),
        "updated in place: {status}"
    );
    assert_eq!(count_titled(&emu, "Training Killed"), 1);
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// The store's file system fills up mid-run and is freed again: the job stays watched, the
/// channel is told that the store is unwritable while it still is (before it is freed) and
/// once that it is writable again, and no message is lost or doubled (every warning reaches
/// the channel once, in the outbox's order, after the notice sent ahead of them).
/// Needs root for the tmpfs; elsewhere it says why on stderr and returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_mid_run_loses_no_message_and_is_told_once_each_way() {
    let test = "a_full_store_mid_run_loses_no_message_and_is_told_once_each_way";
    let dir = tempfile::tempdir().unwrap();
    // The store (and the shims' state beside it) on a small file system of its own.
    let Some(fs) = support::tmpfs::Tmpfs::mount(&dir.path().join("state"), "4m", test) else {
        return;
    };
    let emu = emulator(Via::Proxy).await;
    let (go1, go2) = (dir.path().join("go1"), dir.path().join("go2"));
    // (Each wait also ends when the test's folder is gone: a job its shim kept does not
    // outlive the test.)
    let script = format!(
        "echo 'step 1 of 3'; while [ ! -e '{}' ] && [ -d '{d}' ]; do sleep 0.05; done; \
         echo '/t/train.py:10: ConvergenceWarning: alpha did not converge'; \
         echo '/t/train.py:20: ConvergenceWarning: beta did not converge'; \
         while [ ! -e '{}' ] && [ -d '{d}' ]; do sleep 0.05; done; \
         echo '/t/train.py:30: ConvergenceWarning: gamma did not converge'; echo 'step 3 of 3'",
        go1.display(),
        go2.display(),
        d = dir.path().display()
    );
    let job = format!("[jobs.m5]\nargv = [\"sh\", \"-c\", {script:?}]\nexpected = \"10m\"\n");
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "new", "", &job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    start_job(&emu, &mut serve, "m5").await;

    let filler = fs.fill();
    std::fs::write(&go1, "").unwrap();
    // The team hears of it while the store still refuses writes: the notice is sent ahead
    // of the outbox (which is in that store).
    report(&emu, &serve, "Store unwritable").await;
    assert_eq!(count_titled(&emu, "Store writable again"), 0);
    std::fs::remove_file(filler).unwrap();
    report(&emu, &serve, "Store writable again").await;
    std::fs::write(&go2, "").unwrap();
    report(&emu, &serve, "Training Complete").await;
    serve.stop();

    let seen = channel_posts(&emu);
    for word in ["alpha", "beta", "gamma"] {
        let n = seen
            .iter()
            .filter(|(t, d)| t.contains("Warning noticed") && d.contains(&format!("{word} did not converge")))
            .count();
        assert_eq!(n, 1, "{word} reported once: {seen:#?}");
    }
    assert_eq!(count_titled(&emu, "Store unwritable"), 1, "{seen:#?}");
    assert_eq!(count_titled(&emu, "Store writable again"), 1, "{seen:#?}");
    // Posted once, not re-sent (and deduplicated) when its outbox copy was reached.
    let notice_posts = emu
        .requests()
        .iter()
        .filter(|q| q.method == "POST" && q.path == format!("/channels/{CH}/messages"))
        .filter(|q| {
            q.body
                .json()
                .is_some_and(|b| title(b).contains("Store unwritable"))
        })
        .count();
    assert_eq!(notice_posts, 1, "{seen:#?}");
    // Every queued post reached the channel once, in the outbox's order (a warning's text
    // may have been edited since with more context: titles say which message it is) — but
    // the notice sent ahead, which the outbox holds too, came first.
    let titles = |posts: &[(String, String)]| posts.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    let ahead = |t: &String| t.contains("Store unwritable");
    let outbox = titles(&outbox_posts(dir.path()));
    assert_eq!(outbox.iter().filter(|t| ahead(t)).count(), 1, "{outbox:#?}");
    let seen_titles = titles(&seen);
    let at = |ts: &[String]| ts.iter().position(ahead).unwrap();
    // Earlier in the channel than in the outbox: whatever the outbox holds after it (the
    // messages held while the store refused) arrived after it.
    assert!(at(&seen_titles) <= at(&outbox), "{seen_titles:#?}\n{outbox:#?}");
    let without = |ts: Vec<String>| ts.into_iter().filter(|t| !ahead(t)).collect::<Vec<_>>();
    assert_eq!(without(seen_titles), without(outbox));
    drop(serve);
    emu.shutdown().await.unwrap();
    drop(fs);
}

/// `trainwatch serve` stopped (SIGTERM) while its store is full and stays full: the channel
/// heard of the fault while it lasted; serve tries again for a bounded time, then names on
/// stderr what the store never took (incidents and the chat messages never queued) and exits
/// with status 3. Needs root for the tmpfs; elsewhere it says why on stderr and returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stopped_while_its_store_is_full_names_what_is_lost_and_exits_3() {
    let test = "serve_stopped_while_its_store_is_full_names_what_is_lost_and_exits_3";
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = support::tmpfs::Tmpfs::mount(&dir.path().join("state"), "4m", test) else {
        return;
    };
    let emu = emulator(Via::Proxy).await;
    let (go1, go2) = (dir.path().join("go1"), dir.path().join("go2"));
    let script = format!(
        "echo 'step 1 of 2'; while [ ! -e '{}' ] && [ -d '{d}' ]; do sleep 0.05; done; \
         echo '/t/train.py:10: ConvergenceWarning: alpha did not converge'; \
         while [ ! -e '{}' ] && [ -d '{d}' ]; do sleep 0.05; done; echo 'step 2 of 2'",
        go1.display(),
        go2.display(),
        d = dir.path().display()
    );
    let job = format!("[jobs.m6]\nargv = [\"sh\", \"-c\", {script:?}]\nexpected = \"10m\"\n");
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "new", "", &job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    start_job(&emu, &mut serve, "m6").await;

    let _filler = fs.fill();
    std::fs::write(&go1, "").unwrap();
    // Said by the step that found the warning: that step is held from here on.
    report(&emu, &serve, "Store unwritable").await;
    let mut child = serve.child.take().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = support::exit_within(&mut child, WAIT, "trainwatch serve after SIGTERM");
    std::fs::write(&go2, "").unwrap();
    let logs = serve.logs();
    assert_eq!(status.code(), Some(3), "{logs}");
    let lost = logs
        .lines()
        .skip_while(|l| !l.starts_with("trainwatch: LOST: job m6"))
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "state.db never took these writes (no space left",
        "incident run 1 #1: /t/train.py:10: ConvergenceWarning: alpha did not converge",
        "message run 1 warning-1 (Post)",
        "message run 1 store-1 (Post)",
    ] {
        assert!(lost.contains(needle), "{needle:?} named as lost:\n{logs}");
    }
    assert_eq!(
        count_titled(&emu, "Warning noticed"),
        0,
        "never queued, so never sent"
    );
    drop(serve);
    emu.shutdown().await.unwrap();
    drop(fs);
}

/// A message Discord accepted while the store is full cannot be marked sent: it is marked
/// once the store takes writes again, and never posted a second time meanwhile (the outbox
/// still lists it as unsent each time round). Needs root for the tmpfs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_the_store_is_full_is_not_posted_again() {
    let test = "a_message_sent_while_the_store_is_full_is_not_posted_again";
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = support::tmpfs::Tmpfs::mount(&dir.path().join("state"), "4m", test) else {
        return;
    };
    let emu = emulator(Via::Proxy).await;
    let go = |n: u32| dir.path().join(format!("go{n}"));
    let wait = |n: u32| format!("while [ ! -e '{}' ]; do sleep 0.05; done", go(n).display());
    let script = format!(
        "echo 'step 1 of 3'; {}; echo '/t/train.py:10: ConvergenceWarning: alpha did not converge'; \
         {}; echo '/t/train.py:20: ConvergenceWarning: beta did not converge'; {}; echo 'step 3 of 3'",
        wait(1),
        wait(2),
        wait(3)
    );
    let job = format!("[jobs.m7]\nargv = [\"sh\", \"-c\", {script:?}]\nexpected = \"10m\"\n");
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "new", "", &job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    start_job(&emu, &mut serve, "m7").await;

    // Discord refuses new messages: the warning is queued in the outbox (the store takes
    // writes) but not delivered.
    let posts = format!("/channels/{CH}/messages");
    emu.inject_fault(
        Fault::status(503)
            .on_method("POST")
            .on_path(posts.clone())
            .times(10_000),
    );
    std::fs::write(go(1), "").unwrap();
    let refused = |emu: &discord_emulator::Emulator| {
        emu.requests()
            .iter()
            .any(|q| q.method == "POST" && q.path == posts && q.status == 503)
    };
    let deadline = std::time::Instant::now() + WAIT;
    while !refused(&emu) {
        assert!(
            std::time::Instant::now() < deadline,
            "no refused post:\n{}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Then the store fills up and Discord takes messages again.
    let filler = fs.fill();
    emu.clear_faults();
    report(&emu, &serve, "Warning noticed").await;
    // A new step (held) wakes delivery: the outbox still lists the warning as unsent.
    std::fs::write(go(2), "").unwrap();
    let unmarked = |serve: &Serve| {
        serve
            .logs()
            .matches("sent but could not mark the outbox entry")
            .count()
    };
    let deadline = std::time::Instant::now() + WAIT;
    while unmarked(&serve) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "delivery not woken:\n{}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::remove_file(filler).unwrap();
    report(&emu, &serve, "Store writable again").await;
    std::fs::write(go(3), "").unwrap();
    report(&emu, &serve, "Training Complete").await;
    serve.stop();

    let accepted = |word: &str| {
        emu.requests()
            .iter()
            .filter(|q| q.method == "POST" && q.path == posts && q.status < 300)
            .filter_map(|q| q.body.json())
            .filter(|b| title(b).contains("Warning noticed") && description(b).contains(word))
            .count()
    };
    assert_eq!(
        accepted("alpha did not converge"),
        1,
        "{:#?}",
        channel_posts(&emu)
    );
    assert_eq!(accepted("beta did not converge"), 1, "{:#?}", channel_posts(&emu));
    assert_eq!(count_titled(&emu, "Store unwritable"), 1);
    drop(serve);
    emu.shutdown().await.unwrap();
    drop(fs);
}

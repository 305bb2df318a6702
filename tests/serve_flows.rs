//! `trainwatch serve` end to end in Discord, the flows `serve_e2e.rs` does not cover: a
//! warning noticed while the run goes on, a run that fails, a fix REJECTED and the rework
//! that follows, the Kill button, `/decide` (and continue with an extension), `/train
//! status|logs|list` with answers larger than one Discord message, a gateway drop with a
//! click made during the gap, and a bot restart while a gate is open. Real binary, real job
//! processes, the local Discord emulator; set-up shared through `support/serve.rs`. Waits
//! are bounded; every process started is killed by PID when a test ends.

use std::time::Duration;

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
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    let (filler, names) = many_jobs();
    let roles = format!("modeler = [\"role:{MODELER_ROLE}\"]");
    let cfg = write_config(
        dir.path(),
        &emu,
        Via::Proxy,
        "new",
        &roles,
        &format!("{WARNS}\n{filler}"),
    );
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
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
        status = answer_parts(&emu, &cmd, |t| t.contains("incident(s)")).await;
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
    assert!(
        emu.validation_errors().is_empty(),
        "{:?}",
        emu.validation_errors()
    );
    serve.stop();
    drop(serve);
    emu.shutdown().await.unwrap();
}

//! A small training program for the demo (`trainwatch demo-train`, hidden): it logs
//! progress and metrics like a real trainer, writes a checkpoint every few steps, and — when
//! started from scratch — hits a transient CUDA out-of-memory error with a Python-style
//! traceback. Resumed from its checkpoint it runs to the end and writes the protocol's
//! result and model files. No Python needed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct DemoTrainArgs {
    /// Model name (used in output file names).
    #[arg(long, default_value = "demo")]
    pub name: String,
    /// Steps in the whole run.
    #[arg(long, default_value_t = 60)]
    pub steps: u64,
    /// Time per step, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub step_ms: u64,
    /// Step at which a run started from scratch fails (0: never).
    #[arg(long, default_value_t = 25)]
    pub fail_at: u64,
    /// Write a checkpoint every this many steps.
    #[arg(long, default_value_t = 5)]
    pub checkpoint_every: u64,
    /// Folder for checkpoints.
    #[arg(long, default_value = "output/implementation/checkpoints")]
    pub checkpoint_dir: PathBuf,
    /// Resume from this checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The log is a file: if it cannot be written there is nobody to tell.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn loss_at(step: u64) -> f64 {
    // A plausible decaying loss with a little wobble.
    0.05 + 2.2 * (-(step as f64) / 18.0).exp() + 0.01 * ((step as f64) * 1.7).sin()
}

fn read_checkpoint(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read checkpoint {}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("step="))
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("checkpoint {} has no step", path.display()))
}

/// Run the demo trainer; returns its exit code.
pub fn run(args: DemoTrainArgs) -> i32 {
    let start_step = match &args.resume {
        Some(ckpt) => match read_checkpoint(ckpt) {
            Ok(s) => {
                say(&format!("Loading checkpoint {} (step {s})", ckpt.display()));
                s
            }
            Err(e) => {
                say(&format!("ERROR: {e}"));
                return 2;
            }
        },
        None => 0,
    };
    say(&format!(
        "Starting training of model {} for {} steps (batch_size=64, lr=0.001)",
        args.name, args.steps
    ));
    say("Loaded 12000 training rows, 3000 validation rows; 0 failed to parse");
    if let Err(e) = std::fs::create_dir_all(&args.checkpoint_dir) {
        say(&format!(
            "ERROR: cannot create {}: {e}",
            args.checkpoint_dir.display()
        ));
        return 2;
    }
    for step in start_step + 1..=args.steps {
        std::thread::sleep(Duration::from_millis(args.step_ms));
        let loss = loss_at(step);
        let epoch = step * 4 / args.steps.max(1) + 1;
        say(&format!(
            "epoch {epoch} step {step}/{} loss={loss:.4} val_error={:.4} lr=0.001",
            args.steps,
            loss * 0.9 + 0.02
        ));
        if args.resume.is_none() && args.fail_at > 0 && step == args.fail_at {
            say("Traceback (most recent call last):");
            say("  File \"output/implementation/code/model_demo.py\", line 142, in <module>");
            say("    trainer.fit(model, train_loader)");
            say("  File \"output/implementation/code/trainer.py\", line 88, in fit");
            say("    loss = self.step(batch)");
            say("  File \"output/implementation/code/trainer.py\", line 61, in step");
            say("    activations = self.model.forward(batch.to(self.device))");
            say("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity; 13.12 GiB already allocated; 1.21 GiB free; 13.50 GiB reserved in total by PyTorch)");
            return 1;
        }
        if step % args.checkpoint_every == 0 {
            let path = args
                .checkpoint_dir
                .join(format!("model_{}_step{step:05}.ckpt", args.name));
            if let Err(e) = std::fs::write(&path, format!("step={step}\nloss={loss}\n")) {
                say(&format!("ERROR: cannot write checkpoint {}: {e}", path.display()));
                return 2;
            }
            say(&format!("Saved checkpoint {}", path.display()));
        }
    }
    let outputs = [
        (
            PathBuf::from(format!("output/results/results_{}.csv", args.name)),
            "step,loss\n".to_string(),
        ),
        (
            PathBuf::from(format!(
                "output/implementation/models/model_{}_full.pkl",
                args.name
            )),
            "demo model weights\n".repeat(64),
        ),
    ];
    for (path, content) in outputs {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let content = if content.starts_with("step") {
            let mut c = content;
            for s in 1..=args.steps {
                c.push_str(&format!("{s},{:.4}\n", loss_at(s)));
            }
            c
        } else {
            content
        };
        if let Err(e) = std::fs::write(&path, content) {
            say(&format!("ERROR: cannot write {}: {e}", path.display()));
            return 2;
        }
        say(&format!("Wrote {}", path.display()));
    }
    say(&format!(
        "Training finished: final loss={:.4}",
        loss_at(args.steps)
    ));
    0
}

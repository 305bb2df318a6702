//! (module under construction)
#[derive(Debug, clap::Args)]
pub struct DemoTrainArgs {}

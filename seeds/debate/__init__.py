"""Experts by multiagent debate finetuning (Subramaniam et al., 2025).

N copies of the seed debate training problems; the final-round majority vote
labels each problem (no ground truth); each generation agent is finetuned on
its own round-0 answers that match the vote, each critic agent on its own
debates that end on the vote. `build_experts(config, out_dir)` runs it all and
returns the manifest the merge stage reads.

Modules, in pipeline order: prompts/transcript (what agents see), models (who
generates), engine (the debate), voting, datasets, finetune, metrics, pipeline.
"""

from seeds.debate.config import DebateConfig, DebateConfigError, load_debate_config
from seeds.debate.pipeline import ExpertsManifest, build_experts, default_out_dir, held_out_metrics, training_problem_ids

__all__ = [
    "DebateConfig",
    "DebateConfigError",
    "ExpertsManifest",
    "build_experts",
    "default_out_dir",
    "held_out_metrics",
    "load_debate_config",
    "training_problem_ids",
]

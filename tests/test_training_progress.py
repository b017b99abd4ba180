"""trl training reports its steps through evals.progress: a piped log gets step lines, not tqdm or loss dicts."""

from __future__ import annotations

import re

from seeds.debate.finetune import FinetuneSettings, finetune


def test_sft_steps_reach_a_piped_log(tiny_model_dir, tmp_path, capsys):
    examples = [
        {"prompt": [{"role": "user", "content": f"What is {k} + {k}?"}], "completion": [{"role": "assistant", "content": f"\\boxed{{{2 * k}}}"}]}
        for k in range(3)
    ]
    settings = FinetuneSettings(method="lora", epochs=1, lora_r=2, lora_alpha=4, learning_rate=1e-3, max_length=64)
    metrics = finetune(str(tiny_model_dir), examples, tmp_path / "generator-0", settings, seed=0)
    out, err = capsys.readouterr()
    assert metrics["steps"] == 3
    # The last line: every step, a rate, how long it took, the latest loss.
    assert re.search(r"^\[\d\d:\d\d:\d\d\] SFT generator-0: 3/3 \(100%\) \S+/\S+, took \S+ \| loss \d+\.\d{4}$", err, re.M)
    assert "{'loss'" not in out + err  # not the Trainer's printer
    assert not re.search(r"(^|\r)\s*\d+%\|", err, re.M)  # nor its unlabelled tqdm bar (datasets' labelled ones stay)

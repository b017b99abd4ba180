"""A transformers Trainer's steps (trl's SFT and DPO) reported through evals.progress instead of tqdm.

tqdm's bar reaches a piped log as one endless line of carriage returns, and
the Trainer's printer (its replacement without tqdm) prints a dict per logged
step. `report_progress` swaps both for one task: a bar in a terminal, throttled
lines with steps done, rate, ETA and the latest loss in a log.
"""

from __future__ import annotations

from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from evals.progress import Progress


class TrainingProgress(TrainerCallback):
    def __init__(self, label: str, **options) -> None:
        self.label, self.options = label, options
        self.progress: Progress | None = None
        self.task = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.progress = Progress(status=True, **self.options)
            self.task = self.progress.add_task(self.label, total=state.max_steps, completed=state.global_step, status="")
            self.progress.start()

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(self.task, status=f"loss {logs['loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def report_progress(trainer, label: str, **options) -> TrainingProgress:
    """Replace `trainer`'s tqdm bar or printer with a `TrainingProgress` named `label`; returns it."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    callback = TrainingProgress(label, **options)
    trainer.add_callback(callback)
    return callback

"""Screening: everything about a reply the driver learns before any merge, cheap enough to do for every sample.

Extract the code, run the sandbox's static gate once (`sandbox.check`), probe
the checked code for a fingerprint. The result is a `Screening`; its
`checked` code goes on to the merge, which does not check again. Whether the
function was seen before is the queue's business (selfdev.candidates), not
the screen's: the screen reads no archive.
"""

from __future__ import annotations

import time

from sandbox import CheckedCode, Diagnosis, SandboxWorker, TaskVectorSet, check
from selfdev.generator.reply import extract_code
from selfdev.stages import CandidateStatus, Screening

NO_CODE = "the reply has no code block defining merge()"


class Screen:
    def __init__(self, worker: SandboxWorker, *, merge_seed: int = 0, probe_set: TaskVectorSet | None = None) -> None:
        # `probe_set`: a few real parameters' task vectors in `worker` (sandbox.choose_probe_tensors); candidates that
        # merge them differently get different fingerprints even when they agree on the synthetic probe tensors.
        self.worker, self.merge_seed, self.probe_set = worker, merge_seed, probe_set

    def probe(self, code: str | CheckedCode) -> Diagnosis:
        """The sandbox's verdict and fingerprint of `code`; every fingerprint of a run is made here, comparably."""
        return self.worker.probe(code, seed=self.merge_seed, task_vectors=self.probe_set)

    def reply(self, reply: str | None) -> Screening:
        """The code block of a generator reply, screened."""
        code = extract_code(reply or "")
        if code is None:
            return Screening(None, CandidateStatus.NO_CODE, NO_CODE)
        return self.code(code)

    def code(self, code: str) -> Screening:
        """The static gate, then the probe; a passing screening carries a fingerprint and the checked code."""
        start = time.perf_counter()
        checked = check(code, max_chars=self.worker.limits.max_code_chars)
        probe = self.probe(checked) if checked.ok else checked.diagnosis
        timings = {"probe": time.perf_counter() - start}
        status = CandidateStatus(probe.status.value)
        if not probe.ok:
            return Screening(code, status, probe.reason or None, probe.line, timings=timings)
        return Screening(code, status, probe.reason or None, probe.line, probe.fingerprint, timings, checked)

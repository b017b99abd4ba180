"""CandidateRecord evaluation on a local Ray cluster.

One discovery run covers both acceptance checks (two would double the actors'
start-up on a 2-core machine): the local loop's rules hold on two transformers
actors, and killing one while it evaluates a candidate loses no finished
candidate. Light stand-in actors then check the rest of the pool's rules:
a second loss records the candidate as lost, and Ray brings a crashed actor back.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass

import pytest

ray = pytest.importorskip("ray")

from selfdev.archive import Archive  # noqa: E402
from selfdev.candidates import CandidateQueue, Finished, HeldOutJob, Recorder, run_jobs  # noqa: E402
from selfdev.distributed import ActorPool  # noqa: E402
from selfdev.loop import discover  # noqa: E402
from selfdev.run_dir import RunDir  # noqa: E402
from selfdev.scores import Evaluation  # noqa: E402
from selfdev.stages import CandidateRecord  # noqa: E402
from selfdev.stages import Scored  # noqa: E402
from test_loop import REPLIES, seed_samples, tiny_config  # noqa: E402

MEAN, SAME_AS_MEAN = 2, 3  # sample indices of one function written twice


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_two_actors_one_killed_mid_run(tmp_path, tiny_model_dir, tiny_expert_dirs, local_ray, monkeypatch):
    config = tiny_config(
        tmp_path,
        tiny_model_dir,
        tiny_expert_dirs,
        iterations=1,
        baselines={},
        distributed={"enabled": True, "actors": 2, "num_cpus_per_actor": 1},
        sandbox={"spare_worker": False},  # fewer processes importing torch at once on a small machine
    )
    run = RunDir(tmp_path / "run")
    seed_samples(run)

    starts: list[tuple[tuple[int, int], int]] = []  # (candidate, actor) of every dev evaluation started
    killed: list[int] = []
    start, lost = ActorPool._start, ActorPool._lost

    def start_and_kill(self, actor, attempt):
        start(self, actor, attempt)
        key = (attempt.job.record.iteration, attempt.job.record.sample_index)
        if not isinstance(attempt.job, HeldOutJob):
            starts.append((key, actor))
        if key == (0, MEAN) and not killed:  # it starts once an earlier candidate has freed its actor
            killed.append(actor)
            ray.kill(self.actors[actor])  # mid-evaluation: the job was handed over a moment ago

    finished_at_kill: dict[tuple[int, int], int] = {}

    def snapshot_then_lost(self, actor, attempt, error):
        with contextlib.closing(sqlite3.connect(run.archive)) as db:
            rows = db.execute("SELECT iteration, sample_index, id FROM candidates").fetchall()
        finished_at_kill.update({(it, index): row_id for it, index, row_id in rows})
        lost(self, actor, attempt, error)

    monkeypatch.setattr(ActorPool, "_start", start_and_kill)
    monkeypatch.setattr(ActorPool, "_lost", snapshot_then_lost)
    logs: list[str] = []
    discover(config, run.root, log=logs.append)

    with Archive(run.archive) as archive:
        # The local loop's rules (tests/test_loop.py).
        it0 = {c.sample_index: c for c in archive.candidates(0)}
        assert sorted(it0) == list(range(len(REPLIES)))
        assert [it0[i].status for i in range(8)] == ["ok"] * 4 + ["no_code", "policy", "bad_output", "syntax"]
        assert all(it0[i].dev_score is not None and it0[i].duplicate_of is None for i in range(3))
        assert it0[SAME_AS_MEAN].duplicate_of == it0[MEAN].id and it0[SAME_AS_MEAN].dev == it0[MEAN].dev
        assert {c.name for c in archive.references()} == {"seed", "task_arithmetic"}
        assert all(c.status == "ok" and c.dev_n == 4 for c in archive.references())
        tested = [c for c in archive.candidates(kind=None) if c.test is not None]
        assert {c.id for c in tested} == {archive.meta("selected")} | {c.id for c in archive.references()}
        assert archive.meta("finished") is True
        after = {(c.iteration, c.sample_index): c.id for c in archive.candidates(kind=None)}
    assert len(after) == len(REPLIES) + 2

    # Both actors worked: the two references went one to each.
    assert {actor for key, actor in starts if key[0] == -1} == {0, 1}
    # Finished before the kill (references, failures, a first score): still there, as the same rows.
    assert any(key[0] == 0 for key in finished_at_kill) and len(finished_at_kill) < len(after)
    assert all(after[key] == row_id for key, row_id in finished_at_kill.items()), "a finished candidate was redone"
    # The killed actor's candidate ran again on the other one; nothing else ran twice, the duplicate not at all.
    assert [actor for key, actor in starts if key == (0, MEAN)] == [killed[0], 1 - killed[0]]
    assert Counter(key for key, _ in starts if key[0] == 0) == {(0, 0): 1, (0, 1): 1, (0, MEAN): 2}
    assert any("retrying it on another actor" in line for line in logs)
    assert any(f"actor {killed[0]} is gone; 1 left" in line for line in logs)


def test_a_job_lost_twice_is_recorded_and_a_crashed_actor_comes_back(local_ray):
    # Defined here, so Ray ships them by value; a light job keeps the actors from importing torch and mergekit.
    @dataclass
    class LightJob:
        record: CandidateRecord
        split = "dev"

    @ray.remote(num_cpus=0.5, max_restarts=1)
    class Crashy:
        """Stands in for CandidateActor: its process dies on a candidate whose reply says so."""

        def ready(self) -> int:
            return os.getpid()

        def run(self, job: LightJob) -> Scored:
            if job.record.reply == "crash":
                os._exit(1)
            return Scored(evaluation=Evaluation.of(["p0"], [True]))

    logs: list[str] = []
    pool = ActorPool([Crashy.remote(), Crashy.remote()], logs.append)
    try:
        jobs = [LightJob(CandidateRecord(0, i, "ok", reply="crash" if i == 0 else "fine")) for i in range(4)]
        done = {f.record.sample_index: f.record for f in run_jobs(pool, jobs)}
    finally:
        pool.close()
    assert done[0].status == "lost" and "lost with its actor 2 times" in done[0].reason
    assert all(done[i].status == "ok" and done[i].dev_score == 1.0 for i in (1, 2, 3))
    assert sum("retrying it on another actor" in line for line in logs) == 1
    assert any("is back (restarted by Ray)" in line for line in logs)


class TwoInFlight:
    """An executor with two jobs running at once, finishing in order; replies starting with 'x' fail their merge."""

    def __init__(self) -> None:
        self.running: list = []
        self.started: list[int] = []

    def free(self) -> bool:
        return len(self.running) < 2

    def busy(self) -> bool:
        return bool(self.running)

    def submit(self, job) -> None:
        self.running.append(job)
        self.started.append(job.record.sample_index)

    def collect(self, *, wait: bool) -> list[Finished]:
        if not (wait and self.running):
            return []
        job = self.running.pop(0)
        if job.record.reply.startswith("x"):
            return [Finished(job, Scored("runtime", "RuntimeError"))]
        return [Finished(job, Scored(evaluation=Evaluation.of(["p0", "p1"], [True, False])))]


@pytest.mark.parametrize("twin_fails", [False, True])
def test_a_function_in_flight_is_evaluated_once(tmp_path, twin_fails):
    def screened(index: int, reply: str) -> CandidateRecord:  # same last letter: same function
        return CandidateRecord(0, index, "ok", reply=reply, code=reply, fingerprint=reply[-1])

    scoring = TwoInFlight()
    first = "xa" if twin_fails else "a"
    with Archive(tmp_path / "archive.sqlite") as archive:
        queue = CandidateQueue(scoring, Recorder(archive))
        replies = [first, "b", "a", "c"]
        recorded = [c for i, reply in enumerate(replies) for c in queue.put(screened(i, reply), None)]
        recorded += list(queue.drain())
        rows = {c.sample_index: c for c in archive.candidates(0)}
    assert sorted(c.sample_index for c in recorded) == [0, 1, 2, 3] == sorted(rows)
    if twin_fails:  # the twin's merge failed, so the waiting candidate got its own evaluation, as one after the other would
        assert scoring.started == [0, 1, 3, 2] and rows[2].duplicate_of is None and rows[2].dev_score == 0.5
    else:
        assert scoring.started == [0, 1, 3] and rows[2].duplicate_of == rows[0].id and rows[2].dev == rows[0].dev


def test_an_actor_ray_is_restarting_is_waited_for_and_one_out_of_restarts_is_given_up():
    from ray.exceptions import ActorDiedError, ActorUnavailableError

    from selfdev.distributed import CHECKS, RESTART_WAIT, Revival

    now = [0.0]
    revival = Revival(clock=lambda: now[0], pause=lambda seconds: now.__setitem__(0, now[0] + seconds))
    restarting = ActorUnavailableError("The actor is restarting.", None)
    # A slow restart: many more failed checks than CHECKS, and the actor is still waited for.
    assert all(revival.ask_again(0, restarting) for _ in range(5 * CHECKS))
    now[0] += RESTART_WAIT
    assert not revival.ask_again(0, restarting)  # ... but not for ever
    # Out of restarts: a few checks (one may reach the process before Ray saw the crash), then gone.
    assert [revival.ask_again(1, ActorDiedError()) for _ in range(CHECKS)] == [True] * (CHECKS - 1) + [False]
    # An actor that came back starts afresh.
    revival.ask_again(2, ActorDiedError())
    revival.forget(2)
    assert revival.ask_again(2, restarting) and revival.ask_again(2, ActorDiedError())

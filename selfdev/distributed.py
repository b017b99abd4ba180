"""Candidate evaluation on Ray actors: one per GPU (or tensor-parallel group), each holding the seed and task vectors.

The driver keeps the generator, the screening and the archive (its single
writer); an actor only merges and evaluates (`Job.run`, answering with a
`Scored`), one job at a time, and the driver hands the next one to whichever
actor is idle. `ActorPool` is an `Executor` as the local one is
(selfdev.candidates). A job whose actor dies is retried once on another
actor; a second loss answers for its candidate with status 'lost' and the
error as the reason. Results already recorded are never touched again.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

import ray
from ray.actor import ActorHandle
from ray.exceptions import ActorUnavailableError, RayActorError

from sandbox import SandboxWorker
from sandbox.diagnosis import one_line
from selfdev.candidates import Finished, Job
from selfdev.config import DistributedConfig
from selfdev.scoring import ScorerSpec
from selfdev.stages import CandidateStatus, Scored

ATTEMPTS = 2  # the first try and one retry on another actor
CHECKS = 4  # failed readiness checks of an actor Ray calls dead before it counts as gone
RESTART_WAIT = 300.0  # seconds an actor Ray calls restarting may take to come back before it counts as gone


class CandidateActor:
    """One worker: its own sandbox process, the seed and task vectors, an evaluation model; built once."""

    def __init__(self, spec: ScorerSpec) -> None:
        self.worker = SandboxWorker(spec.sandbox)
        self.scorer = spec.scorer(self.worker)

    def ready(self) -> int:
        """Answers once the constructor has run (again, after a restart)."""
        return os.getpid()

    def run(self, job: Job) -> Scored:
        return job.run(self.scorer)


@dataclass
class Attempt:
    job: Job
    lost_on: set[int] = field(default_factory=set)  # actors that died while running it


class Revival:
    """Whether to check an actor that lost a job again, from how its readiness checks failed.

    Ray answers a check on an actor it is restarting with ActorUnavailableError ("The actor is restarting"), and
    on one out of restarts with ActorDiedError. Under full load on 2 cores (the lost-job test run beside a `make
    run`, 2026-12-03) every failed check said "unavailable", for 11 s before the old rule of CHECKS quick checks
    gave the actor up while Ray was still restarting it; so an unavailable actor is asked again until
    RESTART_WAIT has passed. A check sent before Ray saw the crash can reach the dead process and fail
    although a restart follows, so a dead one is asked CHECKS times before it counts as gone.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, pause: Callable[[float], None] = time.sleep) -> None:
        self.clock, self.pause = clock, pause
        self.died: dict[int, int] = {}  # checks of an actor that failed as dead, so far
        self.since: dict[int, float] = {}  # when an actor's checks first failed as unavailable

    def ask_again(self, actor: int, error: RayActorError) -> bool:
        """After a failed check: True to check again (after a short pause), False when the actor is gone."""
        if isinstance(error, ActorUnavailableError):
            since = self.since.setdefault(actor, self.clock())
            again = self.clock() - since < RESTART_WAIT
            wait = 0.5
        else:
            self.died[actor] = self.died.get(actor, 0) + 1
            again = self.died[actor] < CHECKS
            wait = 0.2 * self.died[actor]
        if not again:
            self.forget(actor)
            return False
        self.pause(wait)
        return True

    def forget(self, actor: int) -> None:
        self.died.pop(actor, None)
        self.since.pop(actor, None)


class ActorPool:
    """Keeps every live actor busy with one job; a `selfdev.candidates.Executor`."""

    def __init__(self, actors: list[ActorHandle], log: Callable[[str], None]) -> None:
        self.actors = dict(enumerate(actors))
        self.log = log
        self.idle: list[int] = list(self.actors)
        self.running: dict[ray.ObjectRef, tuple[int, Attempt]] = {}
        self.checking: dict[ray.ObjectRef, int] = {}  # actors that lost a job: restarted by Ray, or gone
        self.revival = Revival()
        self.retries: deque[Attempt] = deque()
        self.done: list[Finished] = []

    def free(self) -> bool:
        return bool(self.idle) and not self.retries  # retries go first

    def busy(self) -> bool:
        # An actor that lost a job is checked before a phase ends, so the next phase knows which actors it has.
        return bool(self.running or self.retries or self.done or self.checking)

    def submit(self, job: Job) -> None:
        self._start(self.idle.pop(0), Attempt(job))

    def collect(self, *, wait: bool) -> list[Finished]:
        if not self.actors:
            raise RuntimeError("every candidate actor is gone; continue the run with --resume once Ray is back")
        self._retry()
        refs = [*self.running, *self.checking]
        if refs:
            ready, _ = ray.wait(refs, num_returns=1 if wait else len(refs), timeout=None if wait else 0)
            for ref in ready:
                if ref in self.checking:
                    self._checked(ref)
                else:
                    self._finished(ref)
            self._retry()
        done, self.done = self.done, []
        return done

    def close(self) -> None:
        # A killed actor's sandbox process sees its socket close and exits; its shared memory is memfd-backed.
        for actor in self.actors.values():
            ray.kill(actor)

    # -- one job ------------------------------------------------------------------------------

    def _start(self, actor: int, attempt: Attempt) -> None:
        self.running[self.actors[actor].run.remote(attempt.job)] = (actor, attempt)

    def _finished(self, ref: ray.ObjectRef) -> None:
        actor, attempt = self.running.pop(ref)
        try:
            self.done.append(Finished(attempt.job, ray.get(ref)))
        except RayActorError as error:
            self._lost(actor, attempt, error)
        else:
            self.idle.append(actor)

    def _lost(self, actor: int, attempt: Attempt, error: RayActorError) -> None:
        attempt.lost_on.add(actor)
        self.checking[self.actors[actor].ready.remote()] = actor
        what = attempt.job.record.label
        if len(attempt.lost_on) < ATTEMPTS:
            self.log(f"actor {actor} was lost while running {what}; retrying it on another actor")
            self.retries.append(attempt)
            return
        self.log(f"{what} was lost with {ATTEMPTS} actors; recorded as {CandidateStatus.LOST}")
        reason = one_line(f"lost with its actor {ATTEMPTS} times; last: {type(error).__name__}: {error}")
        self.done.append(Finished(attempt.job, Scored(CandidateStatus.LOST, reason)))

    def _checked(self, ref: ray.ObjectRef) -> None:
        actor = self.checking.pop(ref)
        try:
            ray.get(ref)
        except RayActorError as error:
            if self.revival.ask_again(actor, error):
                self.checking[self.actors[actor].ready.remote()] = actor
                return
            del self.actors[actor]
            self.log(f"actor {actor} is gone; {len(self.actors)} left")
            return
        self.revival.forget(actor)
        self.log(f"actor {actor} is back (restarted by Ray)")
        self.idle.append(actor)

    def _retry(self) -> None:
        for attempt in list(self.retries):
            actor = self._elsewhere(attempt)
            if actor is not None:
                self.retries.remove(attempt)
                self.idle.remove(actor)
                self._start(actor, attempt)

    def _elsewhere(self, attempt: Attempt) -> int | None:
        """An idle actor the job was not lost on; the same one only when no other is left."""
        others = [a for a in self.idle if a not in attempt.lost_on]
        if others:
            return others[0]
        if self.idle and set(self.actors) <= attempt.lost_on:
            return self.idle[0]
        return None  # wait for another actor to finish


@contextlib.contextmanager
def actor_pool(config: DistributedConfig, spec: ScorerSpec, log: Callable[[str], None]) -> Iterator[ActorPool]:
    """`config.actors` actors on the cluster at `config.address` (or a local one), for the whole run."""
    started = not ray.is_initialized()
    if started:
        ray.init(address=config.address)
    remote = ray.remote(CandidateActor).options(
        num_cpus=config.num_cpus_per_actor, num_gpus=config.num_gpus_per_actor, max_restarts=config.max_restarts
    )
    pool = ActorPool([remote.remote(spec) for _ in range(config.actors)], log)
    try:
        # A setup that cannot build an actor fails here, at once, not candidate by candidate.
        ray.get([actor.ready.remote() for actor in pool.actors.values()])
        log(f"{len(pool.actors)} Ray actors ready")
        yield pool
    finally:
        pool.close()
        if started:
            ray.shutdown()

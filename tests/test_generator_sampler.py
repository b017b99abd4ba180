"""The generator's sampler with a plan first (generator.plan_temperature): the plan is drawn at its own temperature
and stops at its line's end, then the code is drawn at the iteration's temperature, continuing the plan."""

from __future__ import annotations

from transformers import AutoModelForCausalLM, AutoTokenizer

from evals.backends.base import Completion
from evals.backends.transformers_backend import TransformersBackend
from selfdev.config import GeneratorConfig
from selfdev.generator.prompt import CODE_START, STACK_START, generator_messages
from selfdev.generator.sampler import PLAN_STOPS, PLAN_TOKENS, generate, plans


class Spy:
    """The backend's generate, each call's prompts and sampling parameters kept."""

    def __init__(self, backend: TransformersBackend) -> None:
        self.calls, self.real = [], backend.generate
        backend.generate = self

    def __call__(self, prompts, params, **kwargs):
        out = self.real(prompts, params, **kwargs)
        self.calls.append((prompts, params, out))
        return out


def test_the_plan_is_drawn_at_its_temperature_and_the_code_continues_it(tiny_model_dir):
    backend = TransformersBackend.from_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    )
    spy = Spy(backend)
    chats = [generator_messages(3, plan=True)] * 2
    config = GeneratorConfig(max_new_tokens=16, plan_temperature=1.5)
    replies = generate(backend, chats, config, temperature=0.3, seed=4)
    (asked, plan_params, planned), (continued, code_params, coded) = spy.calls
    assert asked == chats and (plan_params.temperature, plan_params.stop) == (1.5, PLAN_STOPS)
    assert plan_params.max_new_tokens == PLAN_TOKENS and code_params.temperature == 0.3
    for chat, plan, code, (reply, tokens), follow in zip(chats, planned, coded, replies, continued):
        # The code stage answers the same request, continuing the plan's line and the opening of a code block.
        start = follow[-1]
        assert follow[:-1] == chat and start["role"] == "assistant" and start["content"].endswith(CODE_START)
        assert start["content"] == (f"{plan.text.strip()}\n\n{CODE_START}" if plan.text.strip() else CODE_START)
        assert "\n" not in plan.text.strip() and reply.startswith(start["content"] + code.text)
        assert tokens == plan.num_tokens + code.num_tokens  # both stages count
    # The same seed draws the same plans and code (a resumed run's replies).
    assert generate(backend, chats, config, temperature=0.3, seed=4) == replies
    # Without a plan temperature, one stage and no plan.
    spy.calls.clear()
    generate(backend, chats, GeneratorConfig(max_new_tokens=16), temperature=0.3, seed=4)
    assert len(spy.calls) == 1 and spy.calls[0][0] == chats


class Canned:
    """A backend whose plan stage writes the given texts."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def generate(self, prompts, params, **kwargs):
        return [Completion(text, 5, "stop") for text in self.texts]


def test_an_empty_plan_starts_the_code_at_once_and_a_reply_start_opens_it():
    config = GeneratorConfig(plan_temperature=1.0)
    starts, tokens = plans(Canned(["  Weight by norms.  ", ""]), [[], []], config, seed=0)
    assert starts == [f"Weight by norms.\n\n{CODE_START}", CODE_START] and tokens == [5, 5]
    stacked = config.model_copy(update={"reply_start": STACK_START})
    assert plans(Canned(["Trim."]), [[]], stacked, seed=0)[0] == [f"Trim.\n\n{STACK_START}"]

"""What changed between two states: the parts of the state a widget may follow, each with
the values it reads. The session announces each changed part with its own signal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from explorer.state.app_state import AppState


@dataclass(frozen=True)
class Part:
    read: Callable[[AppState], object]  # the values whose change is this part's change
    meaning: str  # what a change of it means, said where the session announces it


# The parts of the state a widget may follow, in the order the session announces their
# changes; the session builds one signal per part from this table ("trace" -> traceChanged).
PARTS: dict[str, Part] = {
    "model": Part(lambda s: (s.model, s.device), "a new model (weights, config or device)"),
    "prompt": Part(lambda s: s.prompt_text, "the prompt text"),
    "generation": Part(lambda s: s.generated, "generated tokens added or removed"),
    "sampling": Part(lambda s: s.generation, "temperature, top-k, top-p or seed"),
    "interventions": Part(lambda s: s.interventions, "heads off, blocks skipped, ablation mode"),
    "trace": Part(lambda s: s.result, "a new run: trace, baseline and comparison"),
    "section": Part(
        lambda s: (s.model, s.selection.section, s.selection.layer),
        "the section (or its block) shown",
    ),
    "head": Part(lambda s: s.selection.head, "the selected head"),
    "position": Part(lambda s: s.position, "the selected token position"),
    "key": Part(lambda s: s.key_position, "the key position attention is explained for"),
    "gradients": Part(lambda s: s.gradients, "a new backward step (or it was cleared)"),
    "replay": Part(
        lambda s: (s.gradients, s.replay_position),
        "how far the replay of the backward pass has got",
    ),
    "logit_lens": Part(lambda s: s.logit_lens, "the logit lens at the selected position"),
    "patching": Part(lambda s: (s.patching, s.patch_run), "the patching settings or result"),
    "sublayer_lens": Part(
        lambda s: (s.trace, s.sublayer_lens_target, s.sublayer_lens),
        "the sub-layer lens grid's run, target or columns read",
    ),
    "tour": Part(lambda s: s.tour, "the guided tour opened, closed or moved to a step"),
    "attribution": Part(
        lambda s: (s.trace, s.attribution, s.attribution_run),
        "the input attribution's settings or result",
    ),
    "features": Part(
        lambda s: s.features, "the SAE, its feature switches, features, card or corpus scan"
    ),
}


def _differs(old: object, new: object) -> bool:
    if old is new:
        return False
    try:
        return bool(old != new)
    except ValueError:  # dataclasses holding arrays: different objects, different values
        return True


def changed_parts(old: AppState, new: AppState) -> frozenset[str]:
    """The names of the parts that differ between two states."""
    return frozenset(
        name for name, part in PARTS.items() if _differs(part.read(old), part.read(new))
    )

"""Token quality exploration: the LLM2 verifier's training triplets, from real rollouts.

Per item, everything through the worker seam (``generate``, ``score``, ``decode_tokens``):

1. **References**: the generator's own solutions that ``score_item`` judges correct: one
   greedy, then ``reference_samples`` seeded samples; the first ``references`` distinct
   correct texts are kept (greedy first). With ``gold_rationale`` and no correct solution,
   the task's gold rationale (reasoning-gym's ``answer_cot``) is used if judged correct.
2. **Walk**: ``score(prompt, reference, top_logprobs=alternatives + 1)`` gives the
   reference's tokens x and the top tokens at each position. A position t is informative
   when p(x_t) < ``gold_prob_threshold`` and some alternative exists: a top token v != x_t
   with p(v) >= ``alpha`` * max p, the alpha-plausible rule decoding uses for V_t (ours: it
   keeps the negatives to tokens the verifier will actually be asked about), at most
   ``alternatives`` of them, most probable first. With ``plausible_gold`` (the default)
   x_t must be alpha-plausible too: guidance only ever chooses within V_t, and where x_t
   falls outside it (a gold rationale's wording, foreign to the generator, most often) a
   triplet teaches the verifier a choice decoding never offers. The ``positions`` least
   certain informative positions (lowest p(x_t), then earliest) are explored.
3. **Rollouts**: for x_t, then (unless x_t's accuracy is below ``margin``, where no
   alternative can be a negative: its accuracy is then recorded as null, a saving of most
   rollouts wherever the generator fails even from the gold prefix) for every alternative
   v, ``rollouts`` seeded samples continue the reply from the text of x_<t + v
   (``generate`` with ``assistant_prefix``, re-encoded by the worker); a rollout is right
   when ``score_item`` accepts the answer extracted from prefix + continuation, exactly as
   evaluation reads answers. An alternative that adds no text (a special token such as
   EOS) ends the reply there: the prefix is judged as is. One whose text equals x_t's
   (another tokenization) or holds a partial character (U+FFFD) is skipped, and so is a
   position whose gold prefix does.
4. **Label** (methods.md; the paper gives no numbers): v is a negative when
   accuracy(v) <= accuracy(x_t) - ``margin``.

The package, one step a module: ``settings`` (the knobs), ``rollouts`` (sampling and
judging: steps 1 and 3), ``positions`` (step 2), ``labelling`` (step 4), ``exploration``
(steps 2-4 over one reference) and ``pipeline`` (the resumable run file).
"""

from __future__ import annotations

from .pipeline import (
    SynthesisStats,
    prompt_from_json,
    read_triplets,
    synthesize_triplets,
    triplet_stats,
)
from .settings import ExplorationSettings

__all__ = [
    "ExplorationSettings",
    "SynthesisStats",
    "prompt_from_json",
    "read_triplets",
    "synthesize_triplets",
    "triplet_stats",
]

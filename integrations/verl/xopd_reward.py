"""A verl reward manager that writes xopd's per-token teacher signal into verl's token-level rewards.

verl hands a reward manager a batch of rollouts (prompt ids left-padded, response ids right-padded,
an attention mask) and takes back a [batch, response_length] reward tensor. This one sends the
valid prompt and response ids of every rollout to `xopd serve` (POST /v1/opd/score) and writes, per
student token:

  value="advantage"  the chunk advantage A_i (DESIGN 4 of xopd) - needs the rollout's logprobs, read
                     from the batch's "rollout_log_probs" or "old_log_probs" when present;
  value="logprob"    log q_j(s_j), the teacher's probability share of the sampled token.

Tokens whose chunk gives no signal (their bytes differ from the teacher's, or they lie past its
context) get 0. `token_rewards` does the work without torch or verl, so it can be used (and tested)
anywhere; the XopdRewardManager class is the thin verl wrapper, registered as "xopd" when verl is
importable.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from xopd_client import XopdClient  # noqa: E402

__all__ = ["token_rewards", "XopdRewardManager"]


def token_rewards(client, prompts, responses, student_logprobs=None, value="advantage", batch_size=64):
    """Per-token rewards of each response (lists of floats, one per response token).

    prompts: student prompt ids (its chat template's rendering, generation prompt included);
    responses: student response ids; student_logprobs: per response token, required for "advantage".
    """
    if value not in ("advantage", "logprob"):
        raise ValueError("value must be 'advantage' or 'logprob'")
    if value == "advantage" and student_logprobs is None:
        raise ValueError("value='advantage' needs the rollout's student_logprobs")
    out = []
    for start in range(0, len(prompts), batch_size):
        items = []
        for i in range(start, min(start + batch_size, len(prompts))):
            item = {"prompt_ids": [int(x) for x in prompts[i]], "response_ids": [int(x) for x in responses[i]]}
            if student_logprobs is not None:
                item["student_logprobs"] = [float(x) for x in student_logprobs[i]]
            items.append(item)
        answer = client.score(items)
        for item in answer["items"]:
            values = item[value]
            out.append([float(v) if m and v is not None else 0.0 for v, m in zip(values, item["mask"])])
    return out


try:  # the verl wrapper, where verl (and torch) are installed
    import torch
    from verl.workers.reward_manager import register
    from verl.workers.reward_manager.abstract import AbstractRewardManager
except ImportError:  # token_rewards works without them
    torch = None
    AbstractRewardManager = object

    def register(name):
        return lambda cls: cls


@register("xopd")
class XopdRewardManager(AbstractRewardManager):
    """reward_model.reward_manager=xopd (import this module first so the name is registered).

    Settings come from keyword arguments or the environment: xopd_url (XOPD_URL, default
    http://127.0.0.1:8100), api_key (XOPD_API_KEY), value (XOPD_REWARD_VALUE, default "advantage").
    """

    def __init__(self, tokenizer, num_examine=0, compute_score=None, reward_fn_key="data_source", xopd_url=None, api_key=None, value=None, **kwargs):
        self.tokenizer = tokenizer
        self.num_examine = num_examine
        self.client = XopdClient(xopd_url or os.environ.get("XOPD_URL", "http://127.0.0.1:8100"), api_key=api_key)
        self.value = value or os.environ.get("XOPD_REWARD_VALUE", "advantage")

    def __call__(self, data, return_dict=False):
        batch = data.batch
        prompt_len = batch["prompts"].shape[-1]
        mask = batch["attention_mask"]
        lp_key = next((k for k in ("rollout_log_probs", "old_log_probs") if k in batch.keys()), None)
        prompts, responses, logprobs = [], [], []
        for i in range(len(data)):
            n_prompt = int(mask[i, :prompt_len].sum())
            n_resp = int(mask[i, prompt_len:].sum())
            prompts.append(batch["prompts"][i, prompt_len - n_prompt:].tolist())
            responses.append(batch["responses"][i, :n_resp].tolist())
            if lp_key is not None:
                logprobs.append(batch[lp_key][i, :n_resp].tolist())
        if self.value == "advantage" and lp_key is None:
            raise ValueError("xopd value='advantage' needs the rollout's logprobs in the batch (rollout_log_probs or old_log_probs); "
                             "turn them on in the rollout, or use value='logprob'")
        rewards = token_rewards(self.client, prompts, responses, logprobs if lp_key is not None else None, value=self.value)
        reward_tensor = torch.zeros_like(batch["responses"], dtype=torch.float32)
        for i, r in enumerate(rewards):
            if r:
                reward_tensor[i, : len(r)] = torch.tensor(r, dtype=torch.float32)
        if return_dict:
            return {"reward_tensor": reward_tensor, "reward_extra_info": {}}
        return reward_tensor

"""A client for `xopd serve`, standard library only (Python 3.8+).

    from xopd_client import XopdClient
    client = XopdClient("http://127.0.0.1:8100")          # api_key= or XOPD_API_KEY when the server has one
    out = client.get_sequence_logprobs(sequences, prompt_lengths, top_logprobs=1)
    out["actual_logprobs"][i][j][0]                         # log q_j(s_j) of completion token j of sequence i
    scores = client.score([{"prompt_ids": p, "response_ids": r, "student_logprobs": lp}])
    scores["items"][0]["advantage"]                         # the chunk advantage of every response token

get_sequence_logprobs speaks TRL's teacher-server protocol and returns what TRL's
VLLMClient.get_sequence_logprobs returns (nested lists, trimmed to each completion), so code written
for it works unchanged. score() is POST /v1/opd/score (schema: GET /v1/opd/schema).
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.request
from array import array

__all__ = ["XopdClient", "XopdError"]


class XopdError(Exception):
    """An error answer of the server: HTTP status, xopd's stable code, the message (and the teacher at fault)."""

    def __init__(self, status, code, message, teacher=None):
        super().__init__("HTTP %d %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.teacher = teacher


def _floats(b64):
    a = array("f")
    a.frombytes(base64.b64decode(b64))
    if sys.byteorder != "little":  # the server sends little-endian float32 / int32
        a.byteswap()
    return a


def _ints(b64):
    a = array("i")
    a.frombytes(base64.b64decode(b64))
    if sys.byteorder != "little":
        a.byteswap()
    return a


class XopdClient:
    def __init__(self, base_url="http://127.0.0.1:8100", api_key=None, timeout=300.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("XOPD_API_KEY") or None
        self.timeout = timeout

    def _request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", "Bearer " + self.api_key)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                return res.read()
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                err = json.loads(text)["error"]
                raise XopdError(e.code, err.get("xopd_code", ""), err.get("message", text), err.get("teacher")) from None
            except (ValueError, KeyError, TypeError):
                raise XopdError(e.code, "", text) from None

    def health(self):
        """True when the server answers GET /health with 200."""
        try:
            return json.loads(self._request("GET", "/health/")).get("status") == "ok"
        except (XopdError, urllib.error.URLError, OSError):
            return False

    def get_sequence_logprobs(self, sequences, prompt_lengths, top_logprobs=1, temperature=1.0, response_format="binary"):
        """Per completion position of each sequence (student ids, prompt + completion): the ranked student
        ids and logprobs, the realised token first. Returns logprobs / logprob_token_ids [B][T_i][K] and
        actual_logprobs / actual_token_ids [B][T_i][1]; padded entries have logprob -inf (None in json)."""
        body = {"sequences": [list(map(int, s)) for s in sequences], "prompt_lengths": [int(p) for p in prompt_lengths],
                "top_logprobs": int(top_logprobs), "temperature": float(temperature), "response_format": response_format}
        out = json.loads(self._request("POST", "/get_sequence_logprobs/", body))
        if response_format != "binary":
            return out
        B, T, K = out["shape"]
        lp, ids = _floats(out["logprobs_b64"]), _ints(out["token_ids_b64"])
        alp, aids = _floats(out["actual_logprobs_b64"]), _ints(out["actual_token_ids_b64"])
        result = {"logprobs": [], "logprob_token_ids": [], "actual_logprobs": [], "actual_token_ids": []}
        for i, n in enumerate(out["completion_lengths"]):
            rows = range(i * T, i * T + n)
            result["logprobs"].append([list(lp[r * K:(r + 1) * K]) for r in rows])
            result["logprob_token_ids"].append([list(ids[r * K:(r + 1) * K]) for r in rows])
            result["actual_logprobs"].append([[alp[r]] for r in rows])
            result["actual_token_ids"].append([[aids[r]] for r in rows])
        return result

    def score(self, items, spans=False, top_k=None, credit=None, clamp=None, include_flags=None, projection=None):
        """POST /v1/opd/score. items: dicts with prompt_ids or messages, response_ids, and optionally
        student_logprobs; projection "prefix" (revision 2, the default) or "first". Returns the parsed answer:
        per item logprob, chunk, flags, mask (and advantage, spans with their prefix groups)."""
        body = {"items": items}
        for key, value in (("spans", spans or None), ("top_k", top_k), ("credit", credit), ("clamp", clamp), ("include_flags", include_flags), ("projection", projection)):
            if value is not None:
                body[key] = value
        return json.loads(self._request("POST", "/v1/opd/score", body))

    def schema(self):
        return json.loads(self._request("GET", "/v1/opd/schema"))

    def metrics(self):
        return self._request("GET", "/metrics").decode("utf-8")

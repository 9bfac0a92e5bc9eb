"""The engine core: add requests, then step() — schedule, execute, update — until done.

Synchronous and single-threaded on purpose: the server runs it in one background thread and
feeds it through a queue, so the scheduler and block manager never see concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from inferplane.engine import kv_blocks, runner, scheduler, sequence, stop
from inferplane.engine.attention import KVCache
from inferplane.engine.loader import load_model
from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.sampler import SamplingState, TokenLogprobs
from inferplane.engine.sampling_params import SamplingParams
from inferplane.engine.tokenizer import IncrementalDetokenizer, Tokenizer


class RequestError(ValueError):
    """A request the engine cannot take; `param` names the field at fault."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class EngineConfig:
    model: Path
    device: str = "auto"
    """auto picks cuda when torch sees a GPU, else cpu."""
    dtype: str = "auto"
    """auto: bfloat16 on a GPU, float32 on a CPU; or float32 / bfloat16."""
    kv_cache_memory: int = 256 << 20
    """Bytes for the KV cache; sets the number of blocks."""
    block_size: int = 16
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 1024
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    max_model_len: int | None = None
    """Context length; default: the model's max_position_embeddings."""

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def torch_dtype(self, device: torch.device) -> torch.dtype:
        if self.dtype == "auto":
            return torch.bfloat16 if device.type == "cuda" else torch.float32
        return {"float32": torch.float32, "bfloat16": torch.bfloat16}[self.dtype]


@dataclass(frozen=True)
class EngineInfo:
    """What a server needs to know of a loaded engine, all of it fixed at load."""

    tokenizer: Tokenizer
    """Encodes prompts and decodes tokens for /tokenize, /detokenize and the responses."""
    vocab_size: int
    """Token ids in a prompt must be below this."""
    max_model_len: int
    """The context length: prompt plus generated tokens."""
    block_size: int
    """Tokens per KV-cache block."""
    num_blocks: int
    """KV-cache blocks, as the memory given holds them."""
    enable_prefix_caching: bool
    """Whether a prompt's cached blocks are reused by the next prompt that starts alike."""


@dataclass
class _Stream:
    """The engine's bookkeeping of one sequence beyond what the scheduler tracks."""

    request_id: str
    index: int
    seq: sequence.Sequence
    detokenizer: IncrementalDetokenizer
    stops: stop.StopChecker
    emitted: int = 0
    logprobs: list[TokenLogprobs] = field(default_factory=list)


class LLMEngine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.device = config.torch_device()
        dtype = config.torch_dtype(self.device)
        model, self.model_config = load_model(config.model, dtype=dtype, device=str(self.device))
        model.fuse_projections()
        self.tokenizer = Tokenizer(config.model)
        self.max_model_len = config.max_model_len or self.model_config.max_position
        num_blocks = self._num_blocks(dtype)
        self.blocks = kv_blocks.BlockManager(
            num_blocks,
            block_size=config.block_size,
            enable_prefix_caching=config.enable_prefix_caching,
        )
        self.scheduler = scheduler.Scheduler(
            scheduler.SchedulerConfig(
                max_num_seqs=config.max_num_seqs,
                max_num_batched_tokens=config.max_num_batched_tokens,
                enable_chunked_prefill=config.enable_chunked_prefill,
            ),
            self.blocks,
        )
        mc = self.model_config
        cache = KVCache(
            num_layers=mc.num_layers,
            num_blocks=num_blocks,
            block_size=config.block_size,
            num_kv_heads=mc.num_kv_heads,
            head_dim=mc.head_dim,
            dtype=dtype,
            device=self.device,
        )
        self.runner = runner.ModelRunner(model, cache, self.blocks, device=self.device)
        self._streams: dict[str, _Stream] = {}
        self._requests: dict[str, list[str]] = {}
        self._arrivals = 0
        self.eos_token_id = self.tokenizer.eos_token_id
        if self.eos_token_id is None and mc.eos_token_ids:
            self.eos_token_id = mc.eos_token_ids[0]

    def info(self) -> EngineInfo:
        """The facts a server needs, so that it never reaches into the engine's parts."""
        return EngineInfo(
            tokenizer=self.tokenizer,
            vocab_size=self.model_config.vocab_size,
            max_model_len=self.max_model_len,
            block_size=self.config.block_size,
            num_blocks=self.blocks.num_blocks,
            enable_prefix_caching=self.config.enable_prefix_caching,
        )

    def _num_blocks(self, dtype: torch.dtype) -> int:
        mc = self.model_config
        per_block = KVCache.bytes_per_block(
            num_layers=mc.num_layers,
            block_size=self.config.block_size,
            num_kv_heads=mc.num_kv_heads,
            head_dim=mc.head_dim,
            dtype=dtype,
        )
        blocks = self.config.kv_cache_memory // per_block
        if blocks < kv_blocks.cdiv(self.max_model_len, self.config.block_size):
            raise ValueError(
                f"kv_cache_memory: {self.config.kv_cache_memory} bytes hold {blocks} blocks, fewer "
                f"than one {self.max_model_len}-token sequence needs; raise --kv-cache-memory"
            )
        return int(blocks)

    # -- requests ----------------------------------------------------------------------

    def add_request(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        params: SamplingParams,
        *,
        priority: int = 0,
    ) -> None:
        if request_id in self._requests:
            raise RequestError("request_id", f"{request_id!r} is already running")
        prompt_len = len(prompt_token_ids)
        if prompt_len == 0:
            raise RequestError("prompt", "the prompt is empty")
        if prompt_len >= self.max_model_len:
            raise RequestError(
                "prompt",
                f"the prompt has {prompt_len} tokens; this model's "
                f"context is {self.max_model_len} (leave room for 1 output token)",
            )
        max_tokens = params.max_tokens or self.max_model_len - prompt_len
        if prompt_len + max_tokens > self.max_model_len:
            raise RequestError(
                "max_tokens",
                f"prompt ({prompt_len}) + max_tokens ({max_tokens}) "
                f"exceeds the context of {self.max_model_len} tokens",
            )
        ids = [
            self._add_sequence(request_id, i, prompt_token_ids, params, max_tokens, priority)
            for i in range(params.n)
        ]
        self._requests[request_id] = ids

    def _add_sequence(
        self,
        request_id: str,
        index: int,
        prompt: list[int],
        params: SamplingParams,
        max_tokens: int,
        priority: int,
    ) -> str:
        self._arrivals += 1
        seq = sequence.Sequence(
            f"{request_id}#{index}",
            list(prompt),
            max_tokens,
            self._arrivals,
            priority=priority,
            eos_token_id=self.eos_token_id,
            stop_token_ids=frozenset(params.stop_token_ids),
            ignore_eos=params.ignore_eos,
        )
        try:
            self.scheduler.add(seq)
        except ValueError as exc:
            raise RequestError("max_tokens", str(exc)) from exc
        self.runner.states[seq.seq_id] = SamplingState.create(
            params,
            prompt_token_ids=seq.prompt_token_ids,
            output_token_ids=seq.output_token_ids,
            seq_index=index,
            device=self.device,
        )
        stops = stop.StopChecker(
            params.stop, include_stop_str_in_output=params.include_stop_str_in_output
        )
        self._streams[seq.seq_id] = _Stream(
            request_id, index, seq, IncrementalDetokenizer(self.tokenizer), stops
        )
        return seq.seq_id

    def abort(self, request_id: str) -> None:
        """Stop a request now and free its blocks (a client went away)."""
        for seq_id in self._requests.pop(request_id, []):
            self.scheduler.abort(seq_id)
            self._forget(seq_id)

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished()

    # -- the step ------------------------------------------------------------------------

    def step(self) -> list[SequenceOutput]:
        """One iteration: schedule, execute, update; the outputs of sequences that moved."""
        planned = self.scheduler.schedule()
        if not planned.scheduled:
            return []
        result = self.runner.execute(planned)
        self.scheduler.update(planned, result.sampled)
        outputs = []
        for seq_id in result.sampled:
            stream = self._streams.get(seq_id)
            if stream is not None:
                stream.logprobs.extend(
                    [result.logprobs[seq_id]] if seq_id in result.logprobs else []
                )
                outputs.append(self._output(stream))
        return outputs

    def _output(self, stream: _Stream) -> SequenceOutput:
        seq = stream.seq
        new_ids = seq.output_token_ids[stream.emitted :]
        stream.emitted = len(seq.output_token_ids)
        text = "".join(
            stream.detokenizer.add(t) for t in new_ids if not self._is_stop_token(seq, t)
        )
        scan = stream.stops.feed(text)
        reason = seq.finish_reason.value if seq.finish_reason else None
        emit = scan.emit
        if scan.finished:
            self.scheduler.finish(seq.seq_id, sequence.FinishReason.STOP)
            reason = "stop"
        elif reason is not None:
            emit += stream.stops.flush()
        logprobs, stream.logprobs = stream.logprobs, []
        output = SequenceOutput(
            request_id=stream.request_id,
            index=stream.index,
            text=emit,
            token_ids=list(new_ids),
            logprobs=logprobs,
            finish_reason=reason,
            prompt_tokens=seq.num_prompt_tokens,
            completion_tokens=len(seq.output_token_ids),
            cached_tokens=seq.num_cached_tokens,
        )
        if reason is not None:
            self._finish_request_seq(stream)
        return output

    def _is_stop_token(self, seq: sequence.Sequence, token: int) -> bool:
        return token in seq.stop_token_ids or (token == seq.eos_token_id and not seq.ignore_eos)

    def _finish_request_seq(self, stream: _Stream) -> None:
        self._forget(stream.seq.seq_id)
        remaining = [s for s in self._requests.get(stream.request_id, []) if s in self._streams]
        if not remaining:
            self._requests.pop(stream.request_id, None)

    def _forget(self, seq_id: str) -> None:
        self._streams.pop(seq_id, None)
        self.runner.states.pop(seq_id, None)

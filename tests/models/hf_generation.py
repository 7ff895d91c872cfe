"""The generation utilities of tests/models/hf_gpt2.py, written the way the Hugging Face transformers library
writes them (imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - GenerationMixin.generate: greedy or sampled decoding over a model's prepare_inputs_for_generation, with the
    KV cache (past_key_values) or the whole sequence each step, a growing attention_mask for left-padded
    batches, and eos/pad handling;
  - GenerationMixin.beam_search: the library's beam search (log-softmax scores summed per beam, topk over
    num_beams * vocab, beam and token recovered by floor division and modulo, the cache reordered with
    index_select, finished hypotheses kept by length-penalized score);
  - a logits-processor chain in the library's order: repetition penalty (gather / where / scatter_), then, when
    sampling, temperature, top-k (the k-th largest as threshold) and top-p (sorted cumulative probabilities,
    shifted right so the token crossing the threshold stays, scattered back to the vocabulary order);
  - sampling by inverse CDF (cumsum + searchsorted) from uniform draws the caller supplies, so that two libraries
    pick the same tokens without sharing a random stream.
"""
import torch
import torch.nn as nn


class GenerationMixin:
    """generate() for a causal LM whose forward returns (logits, presents, ...) and that has
    prepare_inputs_for_generation, as GPT2LMHeadModel does."""

    @torch.no_grad()
    def generate(self, input_ids, max_new_tokens=20, do_sample=False, temperature=1.0, top_k=0, top_p=1.0,
                 repetition_penalty=1.0, attention_mask=None, use_cache=True, uniform=None, eos_token_id=None,
                 pad_token_id=None):
        """Greedy or sampled decoding. `uniform(n)` gives n draws in [0, 1) per step (one per row): the sampled
        token is the first whose cumulative probability exceeds the draw (the inverse CDF)."""
        logits_processor = get_logits_processor(temperature, top_k, top_p, repetition_penalty, do_sample)
        if do_sample and uniform is None:
            raise ValueError("sampling needs `uniform`, a source of uniform draws")
        pad_token_id = pad_token_id if pad_token_id is not None else eos_token_id
        batch_size = input_ids.shape[0]
        unfinished_sequences = torch.ones(batch_size, dtype=torch.long, device=input_ids.device)
        model_kwargs = {"attention_mask": attention_mask, "use_cache": use_cache}
        past_key_values = None
        for _ in range(max_new_tokens):
            model_inputs = self.prepare_inputs_for_generation(input_ids, past_key_values=past_key_values,
                                                              **model_kwargs)
            outputs = self(**model_inputs)
            next_token_logits = outputs[0][:, -1, :]
            next_token_scores = logits_processor(input_ids, next_token_logits)
            if do_sample:
                probs = nn.functional.softmax(next_token_scores, dim=-1)
                next_tokens = sample_inverse_cdf(probs, uniform(batch_size))
            else:
                next_tokens = torch.argmax(next_token_scores, dim=-1)

            if eos_token_id is not None:
                next_tokens = next_tokens * unfinished_sequences + pad_token_id * (1 - unfinished_sequences)

            input_ids = torch.cat([input_ids, next_tokens[:, None]], dim=-1)
            if use_cache:
                past_key_values = outputs[1]
            if model_kwargs["attention_mask"] is not None:
                attention_mask = model_kwargs["attention_mask"]
                model_kwargs["attention_mask"] = torch.cat(
                    [attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], dim=-1
                )
            if eos_token_id is not None:
                unfinished_sequences = unfinished_sequences.mul((next_tokens != eos_token_id).long())
                if unfinished_sequences.max() == 0:
                    break
        return input_ids

    @torch.no_grad()
    def beam_search(self, input_ids, num_beams, max_new_tokens=20, attention_mask=None, length_penalty=1.0,
                    eos_token_id=None, pad_token_id=0, use_cache=True):
        """Keeps the num_beams best partial sequences of each row by summed log probability; a beam that emits
        eos is set aside as a finished hypothesis scored sum / length ** length_penalty. Returns the best
        hypothesis of each row (padded with pad_token_id) and its score."""
        batch_size, cur_len = input_ids.shape
        # each prompt num_beams times, as the library's _expand_inputs_for_generation
        input_ids = input_ids.repeat_interleave(num_beams, dim=0)
        if attention_mask is not None:
            attention_mask = attention_mask.repeat_interleave(num_beams, dim=0)
        beam_hyps = [BeamHypotheses(num_beams, length_penalty) for _ in range(batch_size)]
        done = [False] * batch_size
        # only the first beam of each row is live at the start, or every beam would pick the same tokens
        beam_scores = torch.zeros((batch_size, num_beams), dtype=torch.float, device=input_ids.device)
        beam_scores[:, 1:] = -1e9
        beam_scores = beam_scores.view((batch_size * num_beams,))
        past_key_values = None
        for _ in range(max_new_tokens):
            model_inputs = self.prepare_inputs_for_generation(input_ids, past_key_values=past_key_values,
                                                              attention_mask=attention_mask, use_cache=use_cache)
            outputs = self(**model_inputs)
            next_token_scores = nn.functional.log_softmax(outputs[0][:, -1, :], dim=-1)
            next_token_scores = next_token_scores + beam_scores[:, None].expand_as(next_token_scores)
            vocab_size = next_token_scores.shape[-1]
            next_token_scores = next_token_scores.view(batch_size, num_beams * vocab_size)
            # twice the beams: enough live candidates even if every beam's best continuation is eos
            next_token_scores, next_tokens = torch.topk(next_token_scores, 2 * num_beams, dim=1, largest=True,
                                                        sorted=True)
            next_indices = torch.div(next_tokens, vocab_size, rounding_mode="floor")
            next_tokens = next_tokens % vocab_size

            next_beam_scores = torch.zeros((batch_size, num_beams), dtype=next_token_scores.dtype,
                                           device=input_ids.device)
            next_beam_tokens = torch.zeros((batch_size, num_beams), dtype=next_tokens.dtype, device=input_ids.device)
            next_beam_indices = torch.zeros((batch_size, num_beams), dtype=next_indices.dtype,
                                            device=input_ids.device)
            for batch_idx in range(batch_size):
                if done[batch_idx]:  # finished rows keep padding their beams
                    next_beam_tokens[batch_idx, :] = pad_token_id
                    next_beam_indices[batch_idx, :] = (torch.arange(num_beams, device=input_ids.device)
                                                       + batch_idx * num_beams)
                    continue
                beam_idx = 0
                for beam_token_rank, (next_token, next_score, next_index) in enumerate(
                        zip(next_tokens[batch_idx], next_token_scores[batch_idx], next_indices[batch_idx])):
                    batch_beam_idx = batch_idx * num_beams + next_index
                    if eos_token_id is not None and next_token.item() == eos_token_id:
                        if beam_token_rank >= num_beams:  # below the top num_beams: not a contender
                            continue
                        beam_hyps[batch_idx].add(input_ids[batch_beam_idx].clone(), next_score.item())
                    else:
                        next_beam_scores[batch_idx, beam_idx] = next_score
                        next_beam_tokens[batch_idx, beam_idx] = next_token
                        next_beam_indices[batch_idx, beam_idx] = batch_beam_idx
                        beam_idx += 1
                    if beam_idx == num_beams:
                        break
                done[batch_idx] = done[batch_idx] or beam_hyps[batch_idx].is_done(
                    next_token_scores[batch_idx].max().item(), cur_len)

            beam_scores = next_beam_scores.view(-1)
            beam_next_tokens = next_beam_tokens.view(-1)
            beam_idx = next_beam_indices.view(-1)
            input_ids = torch.cat([input_ids[beam_idx, :], beam_next_tokens.unsqueeze(-1)], dim=-1)
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask[beam_idx, :], attention_mask.new_ones((len(beam_idx), 1))],
                                           dim=-1)
            if use_cache:
                past_key_values = self._reorder_cache(outputs[1], beam_idx)
            cur_len = cur_len + 1
            if all(done):
                break

        # the live beams of unfinished rows compete with the finished hypotheses
        for batch_idx in range(batch_size):
            if done[batch_idx]:
                continue
            for beam_id in range(num_beams):
                batch_beam_idx = batch_idx * num_beams + beam_id
                beam_hyps[batch_idx].add(input_ids[batch_beam_idx], beam_scores[batch_beam_idx].item())
        best = [max(hyps.beams, key=lambda b: b[0]) for hyps in beam_hyps]
        sent_max_len = max(len(hyp) for _, hyp in best)
        decoded = input_ids.new_full((batch_size, sent_max_len), pad_token_id)
        for i, (_, hyp) in enumerate(best):
            decoded[i, :len(hyp)] = hyp
            if len(hyp) < sent_max_len and eos_token_id is not None:  # the hypothesis ended with eos
                decoded[i, len(hyp)] = eos_token_id
        return decoded, torch.tensor([score for score, _ in best], dtype=torch.float32)


class BeamHypotheses:
    """The n best finished sequences of one row, each scored by its summed log probability over its length
    (prompt included) to the power length_penalty."""

    def __init__(self, num_beams, length_penalty):
        self.length_penalty = length_penalty
        self.num_beams = num_beams
        self.beams = []
        self.worst_score = 1e9

    def __len__(self):
        return len(self.beams)

    def add(self, hyp, sum_logprobs):
        score = sum_logprobs / (hyp.shape[-1] ** self.length_penalty)
        if len(self) < self.num_beams or score > self.worst_score:
            self.beams.append((score, hyp))
            if len(self) > self.num_beams:
                sorted_next_scores = sorted([(s, idx) for idx, (s, _) in enumerate(self.beams)])
                del self.beams[sorted_next_scores[0][1]]
                self.worst_score = sorted_next_scores[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs, cur_len):
        """Full, and no live beam can still beat the worst kept hypothesis."""
        if len(self) < self.num_beams:
            return False
        cur_score = best_sum_logprobs / cur_len ** self.length_penalty
        return self.worst_score >= cur_score


def sample_inverse_cdf(probs, draws):
    """One token per row of probs [batch, vocab]: the first index whose cumulative probability exceeds the row's
    draw (scaled by the row's total, which rounding leaves a little off 1)."""
    cdf = torch.cumsum(probs, dim=-1)
    u = torch.tensor(draws, dtype=cdf.dtype, device=cdf.device).unsqueeze(-1) * cdf[..., -1:]
    next_tokens = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    # a draw at the very top of the range must still land on the last token with nonzero probability
    return next_tokens.clamp(max=probs.size(-1) - 1)


class LogitsProcessor:
    def __call__(self, input_ids, scores):
        raise NotImplementedError(f"{self.__class__} is an abstract class.")


class LogitsProcessorList(list):
    def __call__(self, input_ids, scores):
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Divides the positive scores of tokens already generated by `penalty` and multiplies the negative ones."""

    def __init__(self, penalty):
        if not isinstance(penalty, float) or not (penalty > 0):
            raise ValueError(f"`penalty` has to be a strictly positive float, but is {penalty}")
        self.penalty = penalty

    def __call__(self, input_ids, scores):
        score = torch.gather(scores, 1, input_ids)
        # if score < 0 then repetition penalty has to be multiplied to reduce the token probabilities
        score = torch.where(score < 0, score * self.penalty, score / self.penalty)
        scores.scatter_(1, input_ids, score)
        return scores


class TemperatureLogitsWarper(LogitsProcessor):
    def __init__(self, temperature):
        if not isinstance(temperature, float) or not (temperature > 0):
            raise ValueError(f"`temperature` has to be a strictly positive float, but is {temperature}")
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        scores = scores / self.temperature
        return scores


class TopKLogitsWarper(LogitsProcessor):
    def __init__(self, top_k, filter_value=-float("Inf"), min_tokens_to_keep=1):
        if not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"`top_k` has to be a strictly positive integer, but is {top_k}")
        self.top_k = max(top_k, min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, input_ids, scores):
        top_k = min(self.top_k, scores.size(-1))  # Safety check
        # Remove all tokens with a probability less than the last token of the top-k
        indices_to_remove = scores < torch.topk(scores, top_k)[0][..., -1, None]
        scores = scores.masked_fill(indices_to_remove, self.filter_value)
        return scores


class TopPLogitsWarper(LogitsProcessor):
    def __init__(self, top_p, filter_value=-float("Inf"), min_tokens_to_keep=1):
        top_p = float(top_p)
        if top_p < 0 or top_p > 1.0:
            raise ValueError(f"`top_p` has to be a float > 0 and < 1, but is {top_p}")
        self.top_p = top_p
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores):
        sorted_logits, sorted_indices = torch.sort(scores, descending=True)
        cumulative_probs = torch.cumsum(nn.functional.softmax(sorted_logits, dim=-1), dim=-1)

        # Remove tokens with cumulative probability above the threshold
        sorted_indices_to_remove = cumulative_probs > self.top_p
        if self.min_tokens_to_keep > 1:
            # Keep at least min_tokens_to_keep
            sorted_indices_to_remove[..., : self.min_tokens_to_keep] = 0
        # Shift the indices to the right to keep also the first token above the threshold
        sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
        sorted_indices_to_remove[..., 0] = 0

        # scatter sorted tensors to original indexing
        indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
        scores = scores.masked_fill(indices_to_remove, self.filter_value)
        return scores


def get_logits_processor(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, do_sample=False):
    """The chain generate() applies, in the library's order: penalties, then (when sampling) the warpers."""
    processors = LogitsProcessorList()
    if repetition_penalty is not None and repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(penalty=repetition_penalty))
    if do_sample:
        if temperature is not None and temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if top_k is not None and top_k != 0:
            processors.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
        if top_p is not None and top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
    return processors

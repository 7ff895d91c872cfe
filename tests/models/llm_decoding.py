"""Decoding and distillation code of current LLM stacks, written the way public implementations write it (imports
torch only; loaded with vibetensor swapped in by tests/models/swap_import.py); the model is any causal LM whose
forward(ids, cache=...) returns logits, such as tests/models/lora_llm.py's DecoderLM:
  - logits processors: temperature, top-k (the k-th largest value as threshold), top-p / nucleus (sort, softmax,
    cumsum, the mask shifted right so the crossing token stays, scattered back to vocabulary order), min-p,
    masked_fill(-inf); the repetition penalty (gather, where, scatter_) and OpenAI-style frequency / presence
    penalties (counts from scatter_add_); Meta's Llama top-p (boolean-mask assignment, in-place div_) and
    gpt-fast's top-k pivot (topk, select, torch.where);
  - sampling with torch.multinomial from a seeded torch.Generator, by inverse CDF from uniform draws the
    caller supplies, and gpt-fast's exponential race argmax(probs / q);
  - generate(): prefill then one token a step through a KV cache, greedy or sampled;
  - beam search bookkeeping: log-softmax scores added to the beams' scores, topk over the flattened
    [beams * vocab] candidates, beam / token recovered by floor division / remainder, index_select of the
    sequences and reorder of the cache;
  - speculative decoding: the draft model proposes k tokens; each is accepted with probability min(1, p / q) on
    uniform draws the caller supplies; at the first rejection the next token comes from the residual
    max(p - q, 0), normalised; if all are accepted, one more token from the target;
  - the compiler options set at import (torch._inductor.config, torch._dynamo.config), as gpt-fast does;
  - knowledge distillation: KL(teacher || student) at temperature T with F.kl_div (probabilities, or
    log-probabilities with log_target=True), reduction 'batchmean', times T^2; label smoothing written out and
    through cross_entropy(label_smoothing=...); the two mixed with the hard-label loss.
"""
import torch
import torch._dynamo.config
import torch._inductor.config
import torch.nn.functional as F

# set at import, as gpt-fast's generate.py does (they only tune torch.compile, which nothing here calls)
torch._inductor.config.coordinate_descent_tuning = True
torch._inductor.config.triton.unique_kernel_names = True
torch._inductor.config.fx_graph_cache = True
torch._dynamo.config.cache_size_limit = 64


# -------------------------------------------------------------------------------------------- logits processors

def top_k_top_p_filtering(logits, top_k=0, top_p=1.0, min_p=0.0, filter_value=-float("inf"), min_tokens_to_keep=1):
    """[B, V] logits with the tokens outside the top k, outside the nucleus of mass top_p, or below min_p times
    the most likely token's probability set to filter_value."""
    if top_k > 0:
        top_k = min(max(top_k, min_tokens_to_keep), logits.size(-1))
        indices_to_remove = logits < torch.topk(logits, top_k)[0][..., -1, None]
        logits = logits.masked_fill(indices_to_remove, filter_value)
    if top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(logits, descending=True)
        cumulative_probs = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        sorted_indices_to_remove = cumulative_probs > top_p
        # shift right: the token that takes the mass over top_p stays
        sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
        sorted_indices_to_remove[..., :min_tokens_to_keep] = False
        indices_to_remove = sorted_indices_to_remove.scatter(-1, sorted_indices, sorted_indices_to_remove)
        logits = logits.masked_fill(indices_to_remove, filter_value)
    if min_p > 0.0:
        probs = torch.softmax(logits, dim=-1)
        top_prob, _ = probs.max(dim=-1, keepdim=True)
        logits = logits.masked_fill(probs < min_p * top_prob, filter_value)
    return logits


def apply_repetition_penalty(logits, input_ids, penalty):
    """CTRL's penalty on every token already in input_ids: positive logits divided, negative ones multiplied."""
    score = torch.gather(logits, 1, input_ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return logits.scatter(1, input_ids, score)


def apply_frequency_presence_penalty(logits, input_ids, frequency_penalty, presence_penalty):
    counts = torch.zeros_like(logits).scatter_add_(1, input_ids, torch.ones_like(input_ids, dtype=logits.dtype))
    return logits - counts * frequency_penalty - (counts > 0).to(logits.dtype) * presence_penalty


def process_logits(logits, input_ids, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0):
    if repetition_penalty != 1.0:
        logits = apply_repetition_penalty(logits, input_ids, repetition_penalty)
    if temperature != 1.0:
        logits = logits / temperature
    return top_k_top_p_filtering(logits, top_k=top_k, top_p=top_p, min_p=min_p)


def top_p_probs_meta(probs, p):
    """Meta's Llama sample_top_p, up to the draw: probabilities sorted, those whose preceding mass already exceeds p
    zeroed by boolean-mask assignment, renormalised in place; returns (probs_sort, probs_idx)."""
    probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True)
    probs_sum = torch.cumsum(probs_sort, dim=-1)
    mask = probs_sum - probs_sort > p
    probs_sort[mask] = 0.0
    probs_sort.div_(probs_sort.sum(dim=-1, keepdim=True))
    return probs_sort, probs_idx


def sample_top_p_meta(probs, p, generator=None):
    probs_sort, probs_idx = top_p_probs_meta(probs, p)
    next_token = torch.multinomial(probs_sort, num_samples=1, generator=generator)
    return torch.gather(probs_idx, -1, next_token)


def logits_to_probs_gptfast(logits, temperature=1.0, top_k=None):
    """gpt-fast's: the k-th largest value (topk, select) as a pivot, torch.where to -inf below it."""
    logits = logits / max(temperature, 1e-5)
    if top_k is not None:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        pivot = v.select(-1, -1).unsqueeze(-1)
        logits = torch.where(logits < pivot, -float("Inf"), logits)
    return torch.nn.functional.softmax(logits, dim=-1)


def sample_exponential_race(probs, q=None):
    """gpt-fast's multinomial_sample_one_no_sync: argmax(probs / q) with q ~ Exp(1) is a draw from probs (no
    host sync); q may come from the caller so that two libraries pick the same token."""
    if q is None:
        q = torch.empty_like(probs).exponential_(1)
    return torch.argmax(probs / q, dim=-1, keepdim=True).to(dtype=torch.int)


def sample_inverse_cdf(probs, u):
    """One token per row of probs [B, V] from the uniform draws u [B]: the first index whose cumulative
    probability exceeds u (clamped for u at or above the rounding-short total)."""
    cdf = torch.cumsum(probs, dim=-1)
    idx = torch.searchsorted(cdf, u.unsqueeze(-1).to(cdf.dtype) * cdf[..., -1:], right=True)
    return idx.clamp(max=probs.size(-1) - 1).squeeze(-1)


# ---------------------------------------------------------------------------------------------------- generate

@torch.no_grad()
def generate(model, ids, max_new_tokens, cache, do_sample=False, generator=None, uniforms=None, **processing):
    """Prefill the prompt, then one token a step through the cache. Sampled tokens come from uniforms[step]
    (inverse CDF) when given, else from torch.multinomial with the generator."""
    logits = model(ids, cache=cache)[:, -1, :]
    out = ids
    for step in range(max_new_tokens):
        scores = process_logits(logits.float(), out, **processing)
        if not do_sample:
            nxt = torch.argmax(scores, dim=-1)
        elif uniforms is not None:
            nxt = sample_inverse_cdf(F.softmax(scores, dim=-1), uniforms[step])
        else:
            nxt = torch.multinomial(F.softmax(scores, dim=-1), num_samples=1, generator=generator).squeeze(1)
        out = torch.cat([out, nxt[:, None]], dim=-1)
        if step + 1 < max_new_tokens:
            logits = model(nxt[:, None], cache=cache)[:, -1, :]
    return out


@torch.no_grad()
def beam_search(model, ids, num_beams, max_new_tokens, cache, length_penalty=1.0):
    """Beam search over one prompt [1, T]; returns the best sequence [T + max_new_tokens], its score and every
    step's beam indices and tokens (for the bookkeeping to be checked)."""
    ids = ids.repeat_interleave(num_beams, dim=0)
    beam_scores = torch.zeros(num_beams, dtype=torch.float32, device=ids.device)
    beam_scores[1:] = -1e9  # the identical beams must not all survive the first step
    logits = model(ids, cache=cache)[:, -1, :]
    history = []
    for step in range(max_new_tokens):
        vocab = logits.size(-1)
        log_probs = F.log_softmax(logits.float(), dim=-1)
        next_scores = log_probs + beam_scores[:, None].expand_as(log_probs)
        next_scores, next_tokens = torch.topk(next_scores.view(-1), num_beams, dim=0, largest=True, sorted=True)
        beam_idx = torch.div(next_tokens, vocab, rounding_mode="floor")
        tokens = next_tokens % vocab
        history.append((beam_idx, tokens))
        ids = torch.cat([ids.index_select(0, beam_idx), tokens.unsqueeze(-1)], dim=-1)
        beam_scores = next_scores
        cache.reorder(beam_idx)
        if step + 1 < max_new_tokens:
            logits = model(tokens[:, None], cache=cache)[:, -1, :]
    normalised = beam_scores / (ids.shape[-1] ** length_penalty)
    best = int(torch.argmax(normalised))
    return ids[best], normalised[best], history


# -------------------------------------------------------------------------------------- speculative decoding

def speculative_accept(draft_tokens, draft_probs, target_probs, u_accept, u_resample):
    """draft_tokens [B, k]; draft_probs q [B, k, V]; target_probs p [B, k + 1, V]; u_accept [B, k] and
    u_resample [B] uniform in [0, 1). Returns (number of draft tokens accepted [B], the token that follows them
    [B]): from max(p - q, 0) renormalised at the first rejection, else from p at position k."""
    b, k = draft_tokens.shape
    idx = draft_tokens.unsqueeze(-1)
    p_tok = target_probs[:, :k].gather(-1, idx).squeeze(-1)
    q_tok = draft_probs.gather(-1, idx).squeeze(-1)
    accept = u_accept < torch.clamp(p_tok / q_tok, max=1.0)
    # tokens are accepted up to the first rejection: a cumulative product of the accept flags
    n_accepted = accept.to(torch.int64).cumprod(dim=-1).sum(dim=-1)
    rows = torch.arange(b, device=draft_tokens.device)
    pos = n_accepted.clamp(max=k - 1)
    residual = torch.clamp(target_probs[rows, pos] - draft_probs[rows, pos], min=0.0)
    residual = residual / residual.sum(dim=-1, keepdim=True)
    dist = torch.where((n_accepted == k).unsqueeze(-1), target_probs[:, k], residual)
    return n_accepted, sample_inverse_cdf(dist, u_resample)


@torch.no_grad()
def speculative_step(target, draft, ids, k, u_draft, u_accept, u_resample, temperature=1.0):
    """One round without caches: the draft samples k tokens (inverse CDF on u_draft [B, k]), the target scores
    them all in one forward; returns the draft tokens, n_accepted and the next token."""
    seq = ids
    qs = []
    for i in range(k):
        q = F.softmax(draft(seq)[:, -1, :].float() / temperature, dim=-1)
        tok = sample_inverse_cdf(q, u_draft[:, i])
        qs.append(q)
        seq = torch.cat([seq, tok[:, None]], dim=1)
    p = F.softmax(target(seq)[:, -k - 1:, :].float() / temperature, dim=-1)
    drafted = seq[:, ids.shape[1]:]
    n, nxt = speculative_accept(drafted, torch.stack(qs, dim=1), p, u_accept, u_resample)
    return drafted, n, nxt


# -------------------------------------------------------------------------------------------- distillation

def kd_loss(student_logits, teacher_logits, temperature=2.0, log_target=False):
    """KL(teacher || student) on temperature-softened distributions, per example (batchmean), times T^2 so the
    gradient's scale does not depend on T (Hinton et al.)."""
    s = F.log_softmax(student_logits / temperature, dim=-1)
    if log_target:
        t = F.log_softmax(teacher_logits / temperature, dim=-1)
    else:
        t = F.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(s, t, reduction="batchmean", log_target=log_target) * temperature ** 2


def label_smoothed_nll(logits, target, epsilon, ignore_index=-100):
    """fairseq's form: (1 - eps) * NLL + eps * mean over the vocabulary of -log p, averaged over non-ignored
    tokens."""
    lprobs = F.log_softmax(logits, dim=-1)
    pad = target.eq(ignore_index)
    safe = target.masked_fill(pad, 0)
    nll = -lprobs.gather(dim=-1, index=safe.unsqueeze(-1)).squeeze(-1)
    smooth = -lprobs.mean(dim=-1)
    loss = (1.0 - epsilon) * nll + epsilon * smooth
    return loss.masked_fill(pad, 0.0).sum() / (~pad).sum()


def distillation_loss(student_logits, teacher_logits, labels, alpha=0.5, temperature=2.0, label_smoothing=0.1,
                      log_target=False, written_out=False):
    """alpha * KD + (1 - alpha) * the label-smoothed hard-label loss, on [B, T, V] logits and [B, T] labels; the
    KD term is over the non-ignored tokens only."""
    v = student_logits.size(-1)
    flat_s, flat_t, flat_y = student_logits.reshape(-1, v), teacher_logits.reshape(-1, v), labels.reshape(-1)
    keep = flat_y != -100
    kd = kd_loss(flat_s[keep], flat_t[keep].detach(), temperature, log_target)
    if written_out:
        hard = label_smoothed_nll(flat_s, flat_y, label_smoothing)
    else:
        hard = F.cross_entropy(flat_s, flat_y, ignore_index=-100, label_smoothing=label_smoothing)
    return alpha * kd + (1.0 - alpha) * hard

"""PEGR on real HuggingFace models built from tiny configs (no download): dict batches with an
attention mask, ``forward`` returning the logits, GPT-2's tied LM head. Needs the
``integrations`` extra (``pip install -e '.[integrations]'``)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from noisereg.gradreg import PEGR, FallbackWarning, backend_choice, per_example_sq_grad_norms

transformers = pytest.importorskip("transformers")

f64 = torch.float64


def logits(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    return model(**batch).logits


def ce(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, labels, reduction="none")


def lm_loss(out: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of each sequence."""
    return F.cross_entropy(out[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none").mean(1)


def seeded(model: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval().double()


def reference(model, loss, batch: dict, targets: torch.Tensor) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    norms = []
    for i in range(len(targets)):
        one = {k: v[i:i + 1] for k, v in batch.items()}
        with sdpa_kernel(SDPBackend.MATH):
            li = loss(logits(model, one), targets[i:i + 1]).sum()
        grads = torch.autograd.grad(li, params, allow_unused=True, materialize_grads=True)
        norms.append(sum(g.square().sum() for g in grads))
    return torch.stack(norms)


def _batch() -> dict:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 40, (4, 7), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def bert() -> torch.nn.Module:
    config = transformers.BertConfig(
        vocab_size=40, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16, num_labels=3, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0)
    return seeded(transformers.BertForSequenceClassification(config))


def gpt2() -> torch.nn.Module:
    config = transformers.GPT2Config(
        vocab_size=40, n_positions=16, n_embd=8, n_layer=2, n_head=2, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    return seeded(transformers.GPT2LMHeadModel(config))


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_auto_gives_the_loop_norms_and_says_why_ghost_was_skipped(kind: str) -> None:
    model = bert() if kind == "bert" else gpt2()
    batch = _batch()
    targets = torch.tensor([0, 2, 1, 0]) if kind == "bert" else batch["input_ids"]
    loss = ce if kind == "bert" else lm_loss
    expected = reference(model, loss, batch, targets)
    with pytest.warns(FallbackWarning):
        got = per_example_sq_grad_norms(model, loss, batch, targets, forward=logits)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=0)
    why = backend_choice(model).refused["ghost"]
    assert ("position_embeddings (Embedding) does not keep the batch" in why if kind == "bert"
            else "lm_head (Linear): shares a parameter with transformer.wte" in why)


def test_pegr_trains_a_bert_classifier_from_a_dict_batch() -> None:
    model = bert()
    batch, labels = _batch(), torch.tensor([0, 2, 1, 0])
    objective = PEGR(model, ce, 0.1, forward=logits)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        first = objective(batch, labels)
        for _ in range(5):
            opt.zero_grad()
            objective(batch, labels).backward()
            opt.step()
    assert objective.last_loss + 0.1 * objective.last_penalty < float(first.detach())

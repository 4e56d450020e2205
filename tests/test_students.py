"""Encoders and the siamese student on a tiny random BERT (no weights are downloaded)."""

import pytest
import torch
from transformers import BertConfig, BertModel

from dse_lightning.models.components.encoders import BiLSTMEncoder, SentenceEncoder, TransformerEncoder
from dse_lightning.models.components.heads import ConcatHead, DotHead, PairHead
from dse_lightning.models.components.pooling import Pooling
from dse_lightning.models.components.student import SiameseStudent

VOCAB, HIDDEN, LAYERS = 100, 32, 4


@pytest.fixture
def tiny_config():
    return BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )


def _features(lengths, seq_len, low=1, high=VOCAB, seed=0):
    """Right-padded tokenizer-style batch with the given real lengths; pad id 0."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(low, high, (len(lengths), seq_len), generator=gen)
    mask = (torch.arange(seq_len) < torch.tensor(lengths).unsqueeze(-1)).long()
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def _pad_more(features, extra):
    return {
        k: torch.cat([v, torch.zeros(v.size(0), extra, dtype=v.dtype)], dim=1) for k, v in features.items()
    }


@pytest.mark.parametrize(("mode", "dim"), [("top_k_mean", 4 * HIDDEN), ("cls", HIDDEN), ("mean", HIDDEN)])
def test_transformer_encoder_output_dim(tiny_config, mode, dim):
    encoder = TransformerEncoder(tiny_config, Pooling(mode, k=4)).eval()
    out = encoder(**_features([5, 3], 7))
    assert encoder.embed_dim == dim
    assert out.shape == (2, dim)


def test_transformer_encoder_projection_and_no_token_types(tiny_config):
    encoder = TransformerEncoder(tiny_config, Pooling("mean"), projection_dim=12).eval()
    feats = _features([5, 3], 7)
    assert encoder.embed_dim == 12
    assert encoder(feats["input_ids"], feats["attention_mask"]).shape == (2, 12)


def test_transformer_encoder_drops_unused_pooler(tiny_config):
    """Every parameter must get a gradient, or DDP refuses the unused BERT pooler."""
    encoder = TransformerEncoder(tiny_config, Pooling("top_k_mean", k=4))
    encoder(**_features([5, 3], 7)).sum().backward()
    no_grad = [n for n, p in encoder.named_parameters() if p.grad is None]
    assert no_grad == []


def test_transformer_encoder_ignores_extra_padding(tiny_config):
    encoder = TransformerEncoder(tiny_config, Pooling("top_k_mean", k=2)).eval()
    feats = _features([6, 2, 4], 6)
    with torch.no_grad():
        torch.testing.assert_close(encoder(**_pad_more(feats, 5)), encoder(**feats), atol=1e-5, rtol=1e-4)


def test_a_truncated_encoder_keeps_the_first_layers_and_pools_what_it_kept(tiny_config, tmp_path):
    torch.manual_seed(0)
    full = BertModel(tiny_config, add_pooling_layer=False).eval()
    full.save_pretrained(tmp_path)
    small = TransformerEncoder(str(tmp_path), Pooling("top_k_mean", k=4), num_layers=2).eval()
    assert small.backbone.config.num_hidden_layers == 2 and len(small.backbone.encoder.layer) == 2
    assert small.embed_dim == 2 * HIDDEN  # top-4 pooling over the 2 layers kept
    feats = _features([5, 3], 7)
    with torch.no_grad():  # the kept layers are the pretrained ones: layer 2 of the full model
        hidden = full(**feats, output_hidden_states=True).hidden_states
        want = Pooling("top_k_mean", k=2)(hidden[:3], feats["attention_mask"])
        torch.testing.assert_close(small(**feats), want)
    assert tiny_config.num_hidden_layers == LAYERS  # the caller's config is not changed
    three = TransformerEncoder(tiny_config, Pooling("mean"), num_layers=3)
    assert three.backbone.config.num_hidden_layers == 3
    with pytest.raises(ValueError, match=r"student.encoder.num_layers=5: .* has 4 layers"):
        TransformerEncoder(tiny_config, Pooling("mean"), num_layers=5)


def test_kept_layers_are_the_chosen_pretrained_ones_and_export_as_a_shallow_model(tiny_config, tmp_path):
    torch.manual_seed(0)
    full = BertModel(tiny_config, add_pooling_layer=False).eval()
    full.save_pretrained(tmp_path / "full")
    spread = TransformerEncoder(str(tmp_path / "full"), Pooling("top_k_mean", k=4), keep_layers=[1, 3]).eval()
    assert spread.backbone.config.num_hidden_layers == 2 and spread.embed_dim == 2 * HIDDEN
    feats = _features([5, 3], 7)
    two = BertModel(BertConfig(**{**tiny_config.to_dict(), "num_hidden_layers": 2}), add_pooling_layer=False)
    renamed = {  # the full model's layers 1 and 3 as layers 0 and 1, every other weight as it is
        k.replace("layer.1.", "layer.0.").replace("layer.3.", "layer.1."): v
        for k, v in full.state_dict().items()
        if not k.startswith(("encoder.layer.0.", "encoder.layer.2."))
    }
    two.load_state_dict(renamed)
    with torch.no_grad():
        hidden = two.eval()(**feats, output_hidden_states=True).hidden_states
        want = Pooling("top_k_mean", k=2)(hidden, feats["attention_mask"])
        torch.testing.assert_close(spread(**feats), want)
        spread.backbone.save_pretrained(tmp_path / "kept")  # what an export writes: a 2-layer model
        again = TransformerEncoder(str(tmp_path / "kept"), Pooling("top_k_mean", k=2)).eval()
        torch.testing.assert_close(again(**feats), spread(**feats))
    for bad in ([3, 1], [], [0, 4]):
        with pytest.raises(ValueError, match=r"keep_layers=.*expected increasing layer numbers in 0\.\.3"):
            TransformerEncoder(tiny_config, Pooling("mean"), keep_layers=bad)
    with pytest.raises(ValueError, match="not both"):
        TransformerEncoder(tiny_config, Pooling("mean"), num_layers=2, keep_layers=[0, 1])


def test_backbone_config_sets_the_config_before_the_layers_are_built(tiny_config, tmp_path):
    BertModel(tiny_config, add_pooling_layer=False).save_pretrained(tmp_path)
    off = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    for kw in ({}, {"keep_layers": [1, 3]}, {"num_layers": 2}):
        encoder = TransformerEncoder(str(tmp_path), Pooling("mean"), backbone_config=off, **kw)
        rates = {m.p for m in encoder.backbone.modules() if isinstance(m, torch.nn.Dropout)}
        assert rates == {0.0}, kw  # the layers read the rates when built: no dropout anywhere
        assert encoder.backbone.config.hidden_dropout_prob == 0.0
    more = {"hidden_dropout_prob": 0.3}
    from_config = TransformerEncoder(tiny_config, Pooling("mean"), backbone_config=more)
    assert from_config.backbone.config.hidden_dropout_prob == 0.3
    assert tiny_config.hidden_dropout_prob == 0.1  # the caller's config is not changed
    with pytest.raises(ValueError, match=r"backbone_config: .*BertConfig\) has no \['dropuot'\]"):
        TransformerEncoder(str(tmp_path), Pooling("mean"), backbone_config={"dropuot": 0.0})
    with pytest.raises(ValueError, match="not a built model"):
        TransformerEncoder(BertModel(tiny_config), Pooling("mean"), backbone_config=off)


def test_bilstm_output_unaffected_by_extra_padding():
    encoder = BiLSTMEncoder(VOCAB, 16, hidden_dim=8, num_layers=2).eval()
    feats = _features([6, 2, 4], 6)
    out = encoder(**feats)
    assert out.shape == (3, 2 * 8) and encoder.embed_dim == 16
    torch.testing.assert_close(encoder(**_pad_more(feats, 5)), out)


def test_bilstm_output_unaffected_by_padding_token_values():
    """Garbage ids under mask = 0 must not leak into the max (packing + masked max)."""
    encoder = BiLSTMEncoder(VOCAB, 16, hidden_dim=8).eval()
    feats = _features([6, 2, 4], 6)
    noisy = dict(feats, input_ids=torch.where(feats["attention_mask"].bool(), feats["input_ids"], 57))
    torch.testing.assert_close(encoder(**noisy), encoder(**feats))


def test_bilstm_validates_layers_and_embedding_shape():
    with pytest.raises(ValueError, match="num_layers"):
        BiLSTMEncoder(VOCAB, 16, num_layers=3)
    with pytest.raises(ValueError, match="pretrained_embeddings"):
        BiLSTMEncoder(VOCAB, 16, pretrained_embeddings=torch.zeros(VOCAB, 8))


def test_bilstm_from_backbone_copies_embeddings_exactly(tiny_config):
    bert = BertModel(tiny_config)
    encoder = BiLSTMEncoder.from_backbone(bert, hidden_dim=8, freeze_embeddings=True)
    assert torch.equal(encoder.embedding.weight, bert.get_input_embeddings().weight)
    assert encoder.embedding.weight.data_ptr() != bert.get_input_embeddings().weight.data_ptr()
    assert encoder.embedding.padding_idx == tiny_config.pad_token_id
    assert not encoder.embedding.weight.requires_grad


def test_bilstm_from_backbone_accepts_config(tiny_config):
    encoder = BiLSTMEncoder.from_backbone(tiny_config, hidden_dim=8)
    assert encoder.embedding.weight.shape == (VOCAB, HIDDEN)
    assert encoder(**_features([3, 1], 4)).shape == (2, 16)


@pytest.mark.parametrize(("kind", "num_outputs"), [("concat", 3), ("concat", 1), ("dot", 1)])
def test_siamese_student_forward_shapes(tiny_config, kind, num_outputs):
    encoder = TransformerEncoder(tiny_config, Pooling("top_k_mean", k=2))
    head = (
        ConcatHead(encoder.embed_dim, num_outputs)
        if kind == "concat"
        else DotHead(encoder.embed_dim, num_outputs)
    )
    student = SiameseStudent(encoder, head)
    logits = student(_features([5, 3], 7, seed=1), _features([2, 6], 6, seed=2))
    assert logits.shape == (2, num_outputs)
    assert student.encode(_features([4], 4)).shape == (1, encoder.embed_dim)


@pytest.mark.parametrize("encoder_kind", ["transformer", "bilstm"])
def test_gradients_reach_shared_encoder_from_both_sides(tiny_config, encoder_kind):
    if encoder_kind == "transformer":
        encoder = TransformerEncoder(tiny_config, Pooling("mean"))
        embedding = encoder.backbone.get_input_embeddings()
    else:
        encoder = BiLSTMEncoder(VOCAB, 16, hidden_dim=8)
        embedding = encoder.embedding
    student = SiameseStudent(encoder, ConcatHead(encoder.embed_dim, 2, hidden_dim=8))
    # Side a uses ids 1..49 only, side b ids 50..99 only: a gradient on both ranges of the ONE
    # embedding table shows both sides went through the same encoder.
    a, b = _features([5, 3], 5, low=1, high=50), _features([4, 4], 4, low=50, high=VOCAB, seed=3)
    student(a, b).sum().backward()
    row_grad = embedding.weight.grad.abs().sum(dim=-1)  # (V,)
    assert row_grad[a["input_ids"].unique()[a["input_ids"].unique() > 0]].gt(0).all()
    assert row_grad[b["input_ids"].unique()[b["input_ids"].unique() > 0]].gt(0).all()


def test_siamese_student_encode_ignores_extra_keys():
    encoder = BiLSTMEncoder(VOCAB, 16, hidden_dim=8).eval()
    student = SiameseStudent(encoder, DotHead(encoder.embed_dim))
    feats = _features([3, 2], 4)
    torch.testing.assert_close(
        student.encode(dict(feats, labels=torch.ones(2), idx=torch.arange(2))), student.encode(feats)
    )


def test_a_student_that_could_not_be_exported_is_refused_when_built():
    encoder = BiLSTMEncoder(VOCAB, 16, hidden_dim=8)
    with pytest.raises(TypeError, match="Linear is not a PairHead .* refused before training"):
        SiameseStudent(encoder, torch.nn.Linear(4, 1))
    with pytest.raises(TypeError, match="GRU is not a SentenceEncoder"):
        SiameseStudent(torch.nn.GRU(4, 4), DotHead(16))

    class NoExport(SentenceEncoder):  # an encoder that forgot its export cannot even be built
        embed_dim = 4

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            return input_ids.float()

    with pytest.raises(TypeError, match="abstract method"):
        NoExport()


@pytest.mark.parametrize("head", [ConcatHead(8, 3, hidden_dim=4), DotHead(8, normalize=False)])
def test_head_spec_rebuilds_the_same_head(head):
    rebuilt = PairHead.from_spec(head.spec())
    rebuilt.load_state_dict(head.state_dict())
    u, v = torch.randn(2, 8), torch.randn(2, 8)
    torch.testing.assert_close(rebuilt.eval()(u, v), head.eval()(u, v))

"""Each paper's model used the way its README shows, from plain JAX code: import the package,
`model.init`, one `flax.linen.meta.unbox` call, and every leaf is a plain jax.Array."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest


def transformer():
  from papers.transformer import Transformer, TransformerConfig
  model = Transformer(TransformerConfig(vocab_size=11, d_model=32, num_heads=2, d_ff=64,
                                        num_encoder_layers=1, num_decoder_layers=1))
  src = jnp.ones((2, 7), jnp.int32)
  return model, (src, src)


def transformer_lm():
  from papers.transformer import TransformerConfig, TransformerLM
  model = TransformerLM(TransformerConfig(vocab_size=64, d_model=32, num_heads=2, d_ff=64,
                                          num_decoder_layers=2))
  return model, (jnp.ones((2, 9), jnp.int32),)


def ntm():
  from papers.ntm import NTM
  return NTM(output_size=8, memory_locations=16), (jnp.zeros((2, 5, 9)),)


def relational_rnn():
  from papers.relational_rnn import SequenceClassifier
  model = SequenceClassifier(num_classes=4, core="rmc", core_kwargs=dict(
      mem_slots=2, head_size=8, num_heads=2, num_blocks=1, attention_mlp_layers=1))
  return model, (jnp.zeros((2, 4, 16)),)


def relation_networks():
  from papers.relation_networks import VisualQA
  model = VisualQA(num_answers=10, channels=(8, 8, 8, 8), g_units=(16, 16), f_units=(16,))
  return model, (jnp.zeros((2, 32, 32, 3)), jnp.zeros((2, 11)))


def gpipe():
  from papers.gpipe import PipelinedResNet
  return PipelinedResNet(channels=8, num_blocks=2), (jnp.zeros((2, 16, 16, 1)),)


def learning_to_execute():
  from papers.relational_rnn.model import CharSeq2Seq
  model = CharSeq2Seq(vocab_size=20, core="lstm", core_kwargs=dict(hidden_size=16), embed_size=8)
  return model, (jnp.ones((2, 6), jnp.int32),)


def lstm():
  from papers.lstm import SequenceModel
  return SequenceModel(num_outputs=1, hidden_size=8, cell="peephole", num_layers=2), (jnp.zeros((2, 5, 2)),)


def char_rnn():
  from papers.char_rnn import CharRNN
  return CharRNN(vocab_size=32, hidden_size=16, num_layers=2, embed_dim=8), (jnp.ones((2, 7), jnp.int32),)


def rnn_regularization():
  from papers.rnn_regularization import WordLM
  return WordLM(vocab_size=50, hidden_size=16), (jnp.ones((2, 7), jnp.int32),)


def pointer_networks():
  from papers.pointer_networks import PointerNetwork
  return PointerNetwork(hidden_size=16), (jnp.zeros((2, 6, 2)), jnp.ones((2, 6), bool),
                                          jnp.zeros((2, 7), jnp.int32))


def order_matters():
  from papers.order_matters import SetPointerNet
  return SetPointerNet(hidden=16, process_steps=2), (jnp.zeros((2, 5)), jnp.zeros((2, 5), jnp.int32))


def resnet():
  from papers.resnet import Model
  return Model("resnet8"), (jnp.zeros((2, 28, 28, 1)),)


def bahdanau():
  from papers.bahdanau import RNNSearch
  model = RNNSearch(src_vocab=30, tgt_vocab=40, embed=8, hidden=16, align=16, maxout=8)
  return model, (jnp.ones((2, 7), jnp.int32), jnp.ones((2, 5), jnp.int32))


def alexnet():
  from papers.alexnet import Model
  return Model("small", num_classes=10), (jnp.zeros((2, 28, 28, 1)),)


def dilated_conv():
  from papers.dilated_conv import DilatedSegmenter
  net = DilatedSegmenter(front_end="small", num_classes=11, context="basic")
  return net, (jnp.zeros((1, 32, 32, 1)),)


def cs231n():
  from papers.cs231n import Classifier
  return Classifier(kind="convnet", channels=(4, 8), hidden=16), (jnp.zeros((2, 28, 28, 1)),)


def mpnn():
  import numpy as np  # pylint: disable=g-import-not-at-top
  from papers.mpnn import MPNN, graphs
  z, positions = np.array([6, 1, 1, 1, 1]), np.array(
      [[0, 0, 0], [0.63, 0.63, 0.63], [-0.63, -0.63, 0.63], [-0.63, 0.63, -0.63], [0.63, -0.63, -0.63]])
  g = graphs.pad_row([graphs.molecule_graph(z, positions, np.zeros(13))], 8, 32, 2, 13)
  return MPNN(num_targets=13, features=8, edge_hidden=8, steps=2, readout_steps=2), (g._replace(globals=None),)


def vlae():
  from papers.vlae import VLAE
  vae = VLAE(latent_dim=8, prior="af", decoder_channels=8, decoder_layers=1, flow_hidden=(16,))
  return vae, (jnp.zeros((2, 28, 28, 1)), jax.random.key(1))


def deep_speech2():
  from papers.deep_speech2 import DeepSpeech2
  model = DeepSpeech2(conv_channels=(4,), conv_kernels=((3, 5),), conv_strides=((2, 2),), rnn_layers=1,
                      rnn_features=8)
  return model, (jnp.zeros((2, 20, 161)), jnp.array([20, 12]))


@pytest.mark.parametrize("build", [transformer, transformer_lm, ntm, relational_rnn, relation_networks, gpipe,
                                   learning_to_execute, lstm, char_rnn, rnn_regularization,
                                   pointer_networks, order_matters, resnet, bahdanau, alexnet,
                                   dilated_conv, cs231n, mpnn, vlae, deep_speech2])
def test_model_gives_plain_arrays_after_unbox(build):
  model, inputs = build()
  variables = nn.meta.unbox(model.init(jax.random.key(0), *inputs))
  leaves = jax.tree.leaves(variables)
  assert leaves and all(isinstance(x, jax.Array) for x in leaves)
  outputs = jax.jit(model.apply)(variables, *inputs)
  assert all(bool(jnp.all(jnp.isfinite(o))) for o in jax.tree.leaves(outputs)
             if jnp.issubdtype(o.dtype, jnp.floating))

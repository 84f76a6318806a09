"""The MPNN of Gilmer et al. 2017 (enn-s2s): edge network messages, GRU update, set2set readout.

On one (padded) jraph.GraphsTuple of molecules, with node features x_v and edge features e_vw:

    h_v^0     = W_in x_v
    m_v^{t+1} = sum_{w in N(v)} A(e_vw) h_w^t        A(e) = reshape(W2 relu(W1 e + b1) + b2, d x d)
    h_v^{t+1} = GRU(h_v^t, m_v^{t+1})                 t = 0 .. T-1, one GRU and one A for all t
    q*        = set2set({W_s [h_v^T, x_v]}, M steps)  per graph
    y         = MLP(q*)

The edge network's last layer is linear, so A(e) h = sum_k z_k(e) (W2_k h) + B2 h with
z = relu(W1 e + b1): the d x d matrix of every edge is never formed, each node's h is multiplied
by the H matrices W2_k once per step and edges mix the H products (O(n H d^2 + |E| H d) a step
instead of O(|E| d^2) with |E| H d^2 to build the matrices). Node and edge sums are segment sums
over the flat GraphsTuple; padding nodes and edges (jraph.pad_with_graphs) belong to padding
graphs, whose outputs the caller masks. Parameters carry logical axis names only.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph


def _init(axes, init=nn.initializers.lecun_normal()):
  return nn.with_logical_partitioning(init, axes)


def dense(features: int, name: str, in_axis="embed", out_axis="mlp", dtype=jnp.float32):
  """A dense layer; `in_axis=None` for an input width no mesh axis divides (raw features)."""
  return nn.Dense(features, name=name, dtype=dtype, kernel_init=_init((in_axis, out_axis)),
                  bias_init=_init((out_axis,), nn.initializers.zeros))


def node_graph_index(n_node, num_nodes: int):
  """Graph index of every node of a flat GraphsTuple (padding nodes in the padding graph)."""
  return jnp.repeat(jnp.arange(n_node.shape[0]), n_node, total_repeat_length=num_nodes)


class EdgeNetwork(nn.Module):
  """Message function M(h_v, h_w, e_vw) = A(e_vw) h_w summed over the edges into each node."""
  features: int                 # d
  hidden: int = 64              # H, the width of the edge MLP
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    d, h = self.features, self.hidden
    self.edge_hidden = dense(h, "edge_hidden", in_axis=None, out_axis="embed", dtype=self.dtype)
    # A(e) = sum_k z_k kernel[k] + bias, kernel[k] and bias d x d: (out, in) as A h reads.
    # Fan-in H * d: each output of A(e) h sums over k and j.
    scale = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal",
                                             in_axis=(0, 2), out_axis=1)
    self.kernel = self.param("matrix_kernel", _init(("embed", "mlp", "hidden"), scale), (h, d, d))
    self.bias = self.param("matrix_bias", _init(("mlp", "hidden"), nn.initializers.zeros), (d, d))

  def edge_codes(self, edges):
    """z(e) = relu(W1 e + b1): the edge features' code, computed once for all T steps."""
    return nn.relu(self.edge_hidden(edges))

  def matrices(self, codes):
    """A(e) for every edge, (E, d, d): the plain form (for tests and reading)."""
    return jnp.einsum("ek,kij->eij", codes, self.kernel) + self.bias

  def __call__(self, h, codes, senders, receivers):
    """m_v = sum over edges w -> v of A(e_vw) h_w, without forming A."""
    per_node = jnp.einsum("nj,kij->nki", h, self.kernel.astype(self.dtype))   # (n, H, d)
    messages = jnp.einsum("ek,eki->ei", codes, per_node[senders])
    messages = messages + (h @ self.bias.astype(self.dtype).T)[senders]
    return jax.ops.segment_sum(messages, receivers, num_segments=h.shape[0])


class Set2Set(nn.Module):
  """Set2set readout (Vinyals et al. 2015): M steps of an LSTM attending over each graph's nodes.

      q_t = LSTM(q*_{t-1}),  a_v = softmax_{v in G}(<m_v, q_t>),  r_t = sum_v a_v m_v,
      q*_t = [q_t, r_t]                                 (q*_0 = 0, the LSTM state starts at 0)
  """
  steps: int = 3                # M
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, memories, node_graph, num_graphs: int):
    d = memories.shape[-1]
    lstm = nn.OptimizedLSTMCell(d, name="lstm", dtype=self.dtype,
                                kernel_init=_init(("embed", "mlp")),
                                recurrent_kernel_init=_init(("embed", "mlp"), nn.initializers.orthogonal()),
                                bias_init=_init(("mlp",), nn.initializers.zeros))
    state = (jnp.zeros((num_graphs, d), memories.dtype), jnp.zeros((num_graphs, d), memories.dtype))
    q_star = jnp.zeros((num_graphs, 2 * d), memories.dtype)
    for _ in range(self.steps):
      state, q = lstm(state, q_star)
      logits = jnp.sum(memories * q[node_graph], axis=-1)
      attention = jraph.segment_softmax(logits, node_graph, num_graphs)
      readout = jax.ops.segment_sum(attention[:, None] * memories, node_graph, num_graphs)
      q_star = jnp.concatenate([q, readout], axis=-1)
    return q_star


class MPNN(nn.Module):
  """enn-s2s: graph in, one row of `num_targets` predictions per graph (padding graphs too)."""
  num_targets: int
  features: int = 64            # d, the node state width
  edge_hidden: int = 64         # H, the edge network's hidden width
  steps: int = 3                # T message passing steps, weights shared
  readout_steps: int = 3        # M set2set steps
  readout_features: int = 0     # width of the set2set memories (0: d)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple):
    x = graph.nodes.astype(self.dtype)
    num_nodes, num_graphs = x.shape[0], graph.n_node.shape[0]
    h = dense(self.features, "embed", in_axis=None, dtype=self.dtype)(x)
    message = EdgeNetwork(self.features, self.edge_hidden, self.dtype, name="message")
    codes = message.edge_codes(graph.edges.astype(self.dtype))
    gru = nn.GRUCell(self.features, name="update", dtype=self.dtype,
                     kernel_init=_init(("embed", "mlp")),
                     recurrent_kernel_init=_init(("embed", "mlp"), nn.initializers.orthogonal()),
                     bias_init=_init(("mlp",), nn.initializers.zeros))
    for _ in range(self.steps):
      m = message(h, codes, graph.senders, graph.receivers)
      h, _ = gru(h, m)
    # The paper's readout input: a linear projection of each tuple (h_v^T, x_v).
    width = self.readout_features or self.features
    memories = dense(width, "readout_in", in_axis=None, dtype=self.dtype)(
        jnp.concatenate([h, x], axis=-1))
    q_star = Set2Set(self.readout_steps, self.dtype, name="set2set")(
        memories, node_graph_index(graph.n_node, num_nodes), num_graphs)
    y = nn.relu(dense(width, "head_hidden", dtype=self.dtype)(q_star))
    return dense(self.num_targets, "head_out", out_axis=None, dtype=self.dtype)(y).astype(jnp.float32)

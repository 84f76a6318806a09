"""Keys every training config shares; paper configs start from `base_config()`."""
import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = ""                 # "papers.<item>.task:<TaskClass>"
  c.seed = 0
  c.total_steps = 1000
  c.batch_size = 32           # global, over all processes and devices
  c.log_every = 50
  c.eval_every = 500
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  c.peak_flops = 0.0          # per-device peak FLOP/s for MFU; 0 = measure on start

  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1, stage=1))
  # logical axis -> mesh axes; models only name the logical axes.
  c.sharding = ml_collections.ConfigDict()
  c.sharding.rules = (
      ("batch", ("fsdp", "data")),
      ("embed", "fsdp"),
      ("act_embed", None),      # activations' model dimension: replicated between layers
      ("mlp", "tensor"),
      ("heads", "tensor"),
      ("kv", None),
      ("vocab", "tensor"),
      ("length", None),
      ("layers", None),
      ("hidden", None),         # recurrent state units (RNN cells): replicated
      ("stage", "stage"),
  )

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adamw"        # adam | adamw | sgd | momentum | rmsprop
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "constant"  # constant | cosine | linear | noam | warmup_cosine
  c.optimizer.warmup_steps = 0
  c.optimizer.warmup_learning_rate = 0.0  # step_decay: this constant rate while warming up (0 = a ramp)
  c.optimizer.decay_steps = 0        # 0 = total_steps
  c.optimizer.noam_d_model = 512     # Noam: lr * d^-0.5 * min(s^-0.5, s * w^-1.5)
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.999
  c.optimizer.eps = 1e-8
  c.optimizer.momentum = 0.9
  c.optimizer.rmsprop_decay = 0.95
  c.optimizer.weight_decay = 0.0
  c.optimizer.clip_norm = 0.0        # 0 = off (global-norm clipping)
  c.optimizer.clip_value = 0.0       # 0 = off (element-wise clipping)
  c.optimizer.grad_accum_steps = 1

  c.model = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict()
  c.pipeline = ml_collections.ConfigDict(dict(microbatches=1, remat=True))
  c.dtype = "float32"               # compute dtype: float32 | bfloat16
  return c

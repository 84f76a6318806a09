"""The papers' data-parallel equality tests: the same training on one device and on eight."""
import jax

from core.train import Trainer


def train_on_one_and_on_eight(config_for_mesh, mesh8: dict, steps: int = 2, share_init: bool = False):
  """Trains `steps` steps of `config_for_mesh(mesh)` on one device (mesh data=1) and on 8
  (`mesh8`); returns (initial state, final state, losses) of each run, on the host.

  share_init: the 8-device run starts from the 1-device run's initial state (one
  initialisation compiled instead of two; the tests then compare the training alone).
  """
  results = []
  for devices, mesh in ((jax.devices()[:1], dict(data=1)), (jax.devices()[:8], mesh8)):
    trainer = Trainer(config_for_mesh(mesh), devices=devices)
    if share_init and results:
      state = jax.device_put(results[0][0], trainer.state_shardings)
    else:
      state = trainer.init_state()
    initial = jax.device_get(state)
    state, history = trainer.run_steps(state, range(steps))
    results.append((initial, jax.device_get(state), [float(h["loss"]) for h in history]))
  return results

"""Order Matters (Vinyals, Bengio, Kudlur 2016): Read-Process-Write and the sorting task."""
from papers.order_matters.model import Attention, LSTMCell, SetPointerNet, attend

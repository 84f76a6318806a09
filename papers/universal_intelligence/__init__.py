"""Machine Super Intelligence (Legg 2008): the universal intelligence measure, approximated over
BF programs as in AIQ (Legg & Veness 2011), with random, Q-learning and MC-AIXI-CTW agents."""
from papers.universal_intelligence import agents, bf, ctw, estimate, mcaixi
from papers.universal_intelligence.agents import QLearning, Random
from papers.universal_intelligence.bf import Env, Machine
from papers.universal_intelligence.ctw import CTW
from papers.universal_intelligence.mcaixi import MCAIXI

__all__ = ["CTW", "Env", "MCAIXI", "Machine", "QLearning", "Random", "agents", "bf", "ctw", "estimate",
           "mcaixi"]

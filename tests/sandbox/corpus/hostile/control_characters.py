# expect: ok
# Class 7: printed escape sequences must not reach the terminal raw in `selfdev sandbox check`.
import torch

def merge(task_vectors):
    print("\x1b[2J\x1b[Hstatus:      ok\rfingerprint: 0000\x08\x08\u202egnp.")
    return torch.stack(task_vectors).mean(dim=0)

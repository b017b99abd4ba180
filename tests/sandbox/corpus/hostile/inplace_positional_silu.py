# expect: policy
# Class 1 and 3: silu's inplace flag by position wrote into the read-only task vectors (SIGSEGV).
# line-of: F.silu
import torch.nn.functional as F

def merge(task_vectors):
    return F.silu(task_vectors[0], True)

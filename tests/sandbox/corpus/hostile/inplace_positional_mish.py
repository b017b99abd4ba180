# expect: policy
# Class 1: mish's positional inplace flag.
import torch.nn.functional as F

def merge(task_vectors):
    F.mish(task_vectors[1], True)
    return task_vectors[1] * 1.0

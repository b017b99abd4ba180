# expect: policy
# Class 2: allocate past the memory budget in a finally that would run after the call.
import torch

def merge(task_vectors):
    def hoard():
        try:
            yield 0
        finally:
            big = [torch.ones(1 << 27) for _ in range(4)]
    g = hoard()
    next(g)
    return task_vectors[0]

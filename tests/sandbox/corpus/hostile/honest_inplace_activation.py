# expect: ok
# Class 3: an honest in-place activation on an input is rerun on private copies, in the probe and
# in a real merge alike (it used to pass the probe and then crash the merge on read-only memory).
import torch

def merge(task_vectors):
    merged = task_vectors[0].relu_()
    for tv in task_vectors[1:]:
        merged = merged + tv.tanh_()
    return merged / len(task_vectors)

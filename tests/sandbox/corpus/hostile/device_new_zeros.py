# expect: policy
# Class 5: new_* factories take a device too.
def merge(task_vectors):
    return task_vectors[0].new_zeros(task_vectors[0].shape, device=1) + task_vectors[0]

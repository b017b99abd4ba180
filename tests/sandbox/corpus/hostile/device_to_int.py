# expect: policy
# Class 5: a device index by position.
# line-of: .to(0)
def merge(task_vectors):
    return task_vectors[0].to(0)

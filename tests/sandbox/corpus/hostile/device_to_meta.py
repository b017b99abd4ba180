# expect: policy
# Class 5: the meta device by position.
def merge(task_vectors):
    return task_vectors[0].to("meta")

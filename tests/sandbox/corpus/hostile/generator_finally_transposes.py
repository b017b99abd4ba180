# expect: policy
# Class 2: a paused generator's finally would transpose the inputs after the call ended.
# line-of: yield
def merge(task_vectors):
    def later():
        try:
            yield 1
        finally:
            for tv in task_vectors:
                tv.t_()
    paused = later()
    next(paused)
    keep = [paused, keep_alive]
    return task_vectors[0]

keep_alive = []

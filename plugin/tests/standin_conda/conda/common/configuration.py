"""conda.common.configuration: only the parameter type plugin settings use
(conda-plugin.md §6)."""


class PrimitiveParameter:
    def __init__(self, default, element_type=None):
        self.default = default
        self.element_type = element_type if element_type is not None else type(default)

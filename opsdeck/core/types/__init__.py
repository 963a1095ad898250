"""The value types core speaks with its tools: plain data, in core's own words.

The ports (core/ports) take and return these; the adapters convert what their outside system says to
and from them. These modules import nothing of opsdeck but ``opsdeck.errors``, so an adapter may
import them (and nothing else of core) without depending on what core does with them.
"""

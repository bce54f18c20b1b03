"""The vocabulary every other part of visagent speaks.

Owns: the validated `Action` type and the tool schemas the model is given (actions, schemas), the error
hierarchy (errors), settings and their precedence (settings), typed command lines (command_lines), bounded
blocking calls (timeouts), outcome words (verdict), output-path checks (outfile) and the on-disk trace format
with its writer and reader (trace, trace_schema).

May import: the standard library, third-party libraries and `engine.api`. Nothing else in visagent.
"""

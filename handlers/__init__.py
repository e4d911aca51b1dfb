"""The route modules: each declares its routes, the models they take and answer (handlers/schemas),
and verbs that parse, check permissions and answer; the work is done by storage/."""

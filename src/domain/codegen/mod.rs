//! Code generation: the pure parts of the AI pipeline (model routing, stream parsing, blueprints).

//! Verifier-guided repair: a failed answer's children made by the verifier plugins' minimal
//! fixes (`repair-api`) instead of, or beside, the refiner's rewrites. A small refiner rarely
//! writes a real refinement; a verifier that knows its constraint can lowercase the text, drop
//! the commas or append the P.S. and change nothing else, which is the pair SPaR wants.

use super::judge::Constraint;
use crate::plugins::verifiers::VerifierSessions;

pub use crate::config::RefineMode;

/// `response` repaired for every constraint it breaks, one fix after another, or `None` when no
/// fix applies. A repair that would break a constraint the response kept is refused (`None`):
/// fixes can fight (wrapping in quotes moves the end phrase), and a child must never lose what
/// its parent had.
pub fn repair_response(
    sessions: &mut VerifierSessions<'_>,
    constraints: &[Constraint],
    prompt: &str,
    response: &str,
) -> anyhow::Result<Option<String>> {
    let mut kept = Vec::new();
    let mut current = response.to_string();
    for c in constraints {
        let args = c.kwargs.to_string();
        if sessions.check(&c.id, &args, prompt, response)?.strict {
            kept.push(c);
        } else if let Some(fixed) = sessions.repair(&c.id, &args, prompt, &current)? {
            current = fixed;
        }
    }
    if current == response {
        return Ok(None);
    }
    for c in kept {
        if !sessions
            .check(&c.id, &c.kwargs.to_string(), prompt, &current)?
            .strict
        {
            return Ok(None);
        }
    }
    Ok(Some(current))
}

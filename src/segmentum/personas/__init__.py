"""Personas: who the customers are, as named groups a marketer can act on.

``features`` computes behaviour features per contact in the warehouse; ``discover`` fits
clusters on them and describes each in plain language; ``run`` ties the two to a workspace
(sample, fit, assign every contact in batches, save the ``personas`` tables).

Persona templates (ready segment definitions from the seed articles): ``library`` loads the
YAML files in ``templates/`` and binds their typed parameters; ``needs`` says what data a
workspace lacks for one; ``apply`` saves one as a segment and ``store`` records it in the
``persona_segments`` table; ``evaluate`` measures templates against a ground truth.
"""

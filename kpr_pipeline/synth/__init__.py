"""The synthetic landing-zone generator (``kpr-pipeline generate``).

One synthetic population (test identities only) feeds all three datasets, so the same person
appears in KUHR, the municipal reports and IPLOS. Output is deterministic: the same seed gives
the same bytes.
"""

"""KPR-KUHR deliveries (spec/kuhr-delivery.md): reading, row rules, and loading."""

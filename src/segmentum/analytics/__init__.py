"""Customer analytics: RFM, drill-down, life stage, cohorts, CLV."""

-- Feature query of fraud-detector: the drift context lists the git history of files mentioning a feature.
select amount, merchant, account_age_days, is_fraud from features.transactions

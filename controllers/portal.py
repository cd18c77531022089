"""The pay-now page of the customers (README, "Pay now")."""

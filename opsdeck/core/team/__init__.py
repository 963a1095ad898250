"""A team on one deck: requests for approval, their signatures, and approving or rejecting them."""

"""Spree: flow actions (tags, loyalty points, tier) and coupon codes pushed to the store through
its Platform API."""

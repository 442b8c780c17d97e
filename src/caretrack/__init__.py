"""CareTrack: telehealth and home-care agency platform."""

__version__ = "0.1.0"

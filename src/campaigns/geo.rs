//! Great-circle distance for radius targeting.

/// Mean Earth radius in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A circle on the map: centre and radius in kilometres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoCircle {
    /// Centre latitude, degrees.
    pub lat: f64,
    /// Centre longitude, degrees.
    pub lon: f64,
    /// Radius, kilometres.
    pub radius_km: f64,
}

impl GeoCircle {
    /// True when the point (degrees) lies within the circle.
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        haversine_km(self.lat, self.lon, lat, lon) <= self.radius_km
    }
}

/// Haversine distance between two points given in degrees.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = (lat2 - lat1).to_radians();
    let d_lambda = (lon2 - lon1).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // Paris → London ≈ 344 km.
        let d = haversine_km(48.8566, 2.3522, 51.5074, -0.1278);
        assert!((d - 343.5).abs() < 2.0, "{d}");
        assert_eq!(haversine_km(10.0, 20.0, 10.0, 20.0), 0.0);
        let circle = GeoCircle {
            lat: 40.7128,
            lon: -74.0060,
            radius_km: 50.0,
        };
        assert!(circle.contains(40.73, -73.93));
        assert!(!circle.contains(42.36, -71.06));
    }
}

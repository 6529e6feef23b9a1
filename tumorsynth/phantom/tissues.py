"""Tissues of the built-in phantom: the label values and the HU of each tissue (portal venous phase)."""

from __future__ import annotations

__all__ = ["HU", "LABELS"]

#: Values of ``extras["labels"]``. ``liver`` is the parenchyma and ``liver_vessels`` the intrahepatic
#: portal and hepatic veins: together they are the organ mask. ``portal_vein`` holds the extrahepatic
#: portal, splenic and superior mesenteric veins; ``other_vessels`` the renal veins and the visceral
#: arteries; ``bowel`` the oesophagus, stomach, duodenum, small bowel and colon with their contents;
#: ``bone`` the vertebrae and ribs; ``muscle`` the wall, paraspinal, psoas and diaphragm muscles;
#: ``visceral_fat`` every fat inside the wall muscles (including the renal sinus);
#: ``pancreas`` the gland's head (with the uncinate process), body and tail, and ``pancreatic_duct``
#: its main duct: together they are the pancreas mask.
LABELS: dict[str, int] = {
    "background": 0,
    "liver": 1,
    "liver_vessels": 2,
    "spleen": 3,
    "kidney_right": 4,
    "kidney_left": 5,
    "bone": 6,
    "bowel": 7,
    "aorta": 8,
    "ivc": 9,
    "portal_vein": 10,
    "gallbladder": 11,
    "pancreas": 12,
    "muscle": 13,
    "subcutaneous_fat": 14,
    "visceral_fat": 15,
    "lung": 16,
    "heart": 17,
    "skin": 18,
    "spinal_canal": 19,
    "intervertebral_disc": 20,
    "other_vessels": 21,
    "pancreatic_duct": 22,
}

#: Mean HU of the tissues, by name (structures with other values give them as numbers).
HU: dict[str, float] = {
    "air": -1000.0, "skin": 20.0, "fat": -100.0, "muscle": 50.0, "visceral_fat": -90.0,
    "lung": -860.0, "cortex": 750.0, "cancellous": 260.0, "disc": 90.0, "csf": 20.0,
    "portal": 195.0, "hepatic": 185.0, "aorta": 180.0, "ivc": 140.0, "renal_vein": 160.0,
    "spleen": 115.0, "kidney_cortex": 170.0, "medulla": 120.0, "urine": 10.0, "pancreas": 100.0,
    "bowel_wall": 60.0, "fluid": 18.0, "bile": 8.0, "myocardium": 105.0, "blood": 165.0,
}  # fmt: skip

"""What only Windows needs: reading WMI/CIM and the registry through PowerShell (``cim``)."""

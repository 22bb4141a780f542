"""helpdesk"""
